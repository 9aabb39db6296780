"""Settings every emulated interface gets, in one place (the builder and the relay share them).

The userspace datapath and the AF_PACKET relay move real frames, not the
kernel's GSO/GRO super-frames: with offloads on, TCP through OVS netdev hangs
while ping works (see PLATFORM.md), and the relay's loss and duplication would
act on 64 KB aggregates instead of packets. So offloads are off on every end.
"""
from __future__ import annotations

# Off on every emulated interface; veth can change all of these, so one ethtool call does.
OFFLOADS: tuple[str, ...] = ("tx", "rx", "tso", "gso", "gro")
# Also off on a relay's ends, one call each: ethtool refuses a whole list if one feature is fixed.
RELAY_OFFLOADS: tuple[str, ...] = (*OFFLOADS, "lro", "ufo", "rxvlan", "txvlan")


def offloads_off_command(intf: str) -> str:
    """One shell command turning OFFLOADS off on `intf` (quietly: a missing feature is no error)."""
    return f"ethtool -K {intf} {' '.join(f'{f} off' for f in OFFLOADS)} >/dev/null 2>&1"
