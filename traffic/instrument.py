"""What the testbed's own measuring programs share (the capture agent, traffic.sink; the prober's sender,
traffic.send): they run below the programs of the network they measure.

On 2 cores a gNB's capture agent sees its whole cell's traffic, and a hundred agents and senders compete
with the switch daemon, the link relays and the 5G programs; the instruments must be the ones that wait.
"""
from __future__ import annotations

import os

NICE = 10


def yield_cpu() -> None:
    """Lower this process's CPU priority by NICE (best effort: at worst it keeps its own)."""
    try:
        os.nice(NICE)
    except OSError:
        pass
