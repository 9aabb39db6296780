"""The contract between the network builder and an impairment backend.

A backend impairs ONE link at a time; the builder decides the plumbing and hands
over the two interfaces that carry the link's frames:

- `if_a` is the interface facing node A (frames from A arrive on it, frames for
  A leave through it), `if_b` likewise for node B.
- 'userspace' needs both in the root namespace (the root-ns ends of the veths
  of A and B, or OVS ports); its relay forwards between them.
- 'netem' shapes egress: a_to_b on if_b, b_to_a on if_a. The interfaces may live
  in other namespaces (`Port.netns` / `Port.pid`).

Both return a `LinkImpairment` handle so the builder and the CLI can change a
direction live, read counters, and remove the impairment, without caring which
backend is underneath.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from testbed.impair.spec import Impairment

Direction = Literal["a_to_b", "b_to_a"]
DIRECTIONS: tuple[Direction, ...] = ("a_to_b", "b_to_a")


class ImpairError(Exception):
    """An impairment could not be set up or changed (the message says why)."""


@dataclass(frozen=True)
class Port:
    """An interface, and the network namespace it lives in (None: root)."""

    ifname: str
    netns: str | None = None  # `ip netns` name
    pid: int | None = None  # or any process inside the namespace (Mininet nodes)

    def ns_prefix(self) -> list[str]:
        """Command prefix that runs a command inside this port's namespace."""
        if self.netns is not None:
            return ["ip", "netns", "exec", self.netns]
        if self.pid is not None:
            return ["nsenter", "-t", str(self.pid), "-n"]
        return []

    @property
    def in_root(self) -> bool:
        return self.netns is None and self.pid is None


@runtime_checkable
class LinkImpairment(Protocol):
    """A live impairment of one link, whatever backend implements it."""

    def set(self, direction: Direction, impairment: Impairment) -> None:
        """Change one direction now, without interrupting the other."""
        ...

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per direction ('a_to_b', 'b_to_a'); keys depend on the backend."""
        ...

    def stop(self) -> None:
        """Remove the impairment (idempotent)."""
        ...


@runtime_checkable
class ImpairBackend(Protocol):
    """Something that can impair a link; see the module docstring for wiring."""

    name: str  # 'netem' or 'userspace'

    def impair_link(self, if_a: Port, if_b: Port, a_to_b: Impairment, b_to_a: Impairment,
                    workdir: Path) -> LinkImpairment:
        """Start impairing; `workdir` holds control sockets and logs (unique per link)."""
        ...
