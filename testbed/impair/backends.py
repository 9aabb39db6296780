"""The registry of impairment backends, and the choice of one for this machine.

A run stores the chosen backend's name in its manifest; any other process
(`testbed link set`, `testbed link show`) gets the same backend back with
`get_backend(name)` and works from the link records alone. A new backend is one
class in `REGISTRY`; nothing else compares names.
"""
from __future__ import annotations

import os

from testbed.impair.base import ImpairBackend, ImpairError
from testbed.impair.netem import NetemBackend, netem_available
from testbed.impair.userspace import UserspaceBackend

REGISTRY: dict[str, type[ImpairBackend]] = {cls.name: cls for cls in (NetemBackend, UserspaceBackend)}
BACKENDS = ("auto", *REGISTRY)
BACKEND_ENV = "TESTBED_IMPAIRMENT"  # auto | netem | userspace


def get_backend(name: str) -> ImpairBackend:
    """The backend a run recorded by name (in this or any other process)."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ImpairError(f"unknown impairment backend {name!r}; known: {', '.join(REGISTRY)}") from None
    return cls(reason="recorded in the run's manifest")


def select_backend(prefer: str = "auto") -> ImpairBackend:
    """The backend to use; its `reason` is meant for `testbed doctor` and reports.

    'auto' picks netem when the kernel has it (no userspace CPU cost) and the
    relay otherwise; asking for 'netem' where it is missing is an error rather
    than a silent downgrade, so a run never measures something it did not ask for.
    """
    if prefer not in BACKENDS:
        raise ValueError(f"impairment backend must be one of {', '.join(BACKENDS)}, got {prefer!r}")
    if prefer == "userspace":
        return UserspaceBackend("userspace relay requested")
    if netem_available():
        return NetemBackend("kernel has sch_netem")
    if prefer == "netem":
        raise ImpairError("netem backend requested but this kernel has no sch_netem "
                          "(use 'auto' or 'userspace')")
    return UserspaceBackend("kernel has no sch_netem: using the userspace relay (AF_PACKET)")


def choose_backend() -> str:
    """'netem' or 'userspace', as select_backend decides for $TESTBED_IMPAIRMENT (default auto)."""
    return select_backend(os.environ.get(BACKEND_ENV, "auto")).name
