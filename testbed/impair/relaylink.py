"""The Mininet link the userspace backend wires where a relay sits.

Its own module because it subclasses Mininet's Link: only the building process
imports it (lazily, from `UserspaceBackend.wiring`), so relay processes and
`import testbed.impair` never pay for Mininet.
"""
from __future__ import annotations

from typing import Any

from mininet.link import Link

from testbed.impair.base import ImpairError


class RelayLink(Link):
    """A link built as two veth pairs whose inner ends stay in the root namespace.

    node A's interface pairs with `relay_ends[0]`, node B's with `relay_ends[1]`;
    the relay forwards between those two, so frames cross it in both directions.
    """

    def __init__(self, node1: Any, node2: Any, relay_ends: tuple[str, str] = ("", ""), **params: Any) -> None:
        self.relay_ends = relay_ends
        super().__init__(node1, node2, **params)

    def makeIntfPair(self, intfname1: str, intfname2: str, addr1: str | None = None, addr2: str | None = None,
                     node1: Any = None, node2: Any = None, deleteIntfs: bool = True) -> None:
        ra, rb = self.relay_ends
        for node, intf, addr, end in ((node1, intfname1, addr1, ra), (node2, intfname2, addr2, rb)):
            mac = f" address {addr}" if addr else ""
            out = node.cmd(f"ip link add name {intf}{mac} type veth peer name {end} netns 1")
            if out.strip():
                raise ImpairError(f"creating {intf}<->{end}: {out.strip()}")
