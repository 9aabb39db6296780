"""The one interface every impairment backend implements, so the engine never asks which.

A backend owns everything about how a link is impaired (Kathará's manager
factory, applied to links): how the link is wired when Mininet builds it, which
root-namespace interfaces that creates, how the impairment starts, what the
run's manifest records about it, and how a running link is changed or read --
from the record alone, so `testbed link set` in another process needs no live
objects. The engine builds links, starts impairments and saves records; it
stores the backend's name in the manifest and gets the object back by that
name (`backends.get_backend`).

Directions: `a_to_b` carries frames from node A to node B, `b_to_a` the
reverse, whatever backend does it.

Imports stay cheap on purpose (relay processes import this package and must
start fast): the topology model and Mininet are only imported where a function
needs them.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from testbed.errors import TestbedError
from testbed.impair.spec import Impairment

if TYPE_CHECKING:
    from testbed.openflow.layout import LinkLayout
    from testbed.topology.model import Impair, LinkParams

Direction = Literal["a_to_b", "b_to_a"]
DIRECTIONS: tuple[Direction, ...] = ("a_to_b", "b_to_a")


class ImpairError(TestbedError):
    """An impairment could not be set up or changed (the message says why; the CLI shows it, exit 1)."""


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
    """A live impairment of one link, held by the process that started it."""

    pid: int | None  # a helper process carrying the impairment (teardown stops it); None: the kernel does

    def set(self, direction: Direction, impairment: Impairment) -> None:
        """Change one direction now, without interrupting the other."""
        ...

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per direction ('a_to_b', 'b_to_a'); keys depend on the backend."""
        ...

    def stop(self) -> None:
        """Remove the impairment (idempotent)."""
        ...


@dataclass(frozen=True)
class StartContext:
    """What a backend may need to start one link's impairment after the network is built."""

    run_id: str
    workdir: Path  # per-run directory for control sockets and logs (kept short: unix socket paths)
    netns_pid: dict[str, int | None]  # node name -> a process in its network namespace; None: root (switches)
    tso: bool = False  # userspace TSO in force: a link whose impairment is frame-safe keeps 64 KB frames


def needs_impairment(ln: LinkLayout) -> bool:
    """Any impairment setting given (even 0) makes the link changeable at run time."""
    return any(x is not None and x.is_set() for x in (ln.params, ln.a_to_b, ln.b_to_a))


def shaped(ln: LinkLayout) -> bool:
    """The testbed acts on this link's packets (an impairment other than a constant delay, a rate or an
    MTU): it must carry real packets, not 64 KB TCP frames (testbed.netdev). A delay alone acts on a
    frame as on each of its packets (Impairment.frame_safe), as netem's does on a GSO packet."""
    if ln.params.bw or ln.params.mtu:
        return True
    return needs_impairment(ln) and not all(imp.frame_safe() for imp in link_impairments(ln))


def keeps_frames(ln: LinkLayout, tso: bool) -> bool:
    """The link carries 64 KB TCP frames through its impairment point: userspace TSO in force and the link
    not shaped. Its relay keeps segmentation on its own ends, and testbed link set / a drill turn the link
    ends' segmentation off and on as its impairment stops or starts being frame-safe."""
    return tso and not shaped(ln)


def link_impairments(ln: LinkLayout, rate: bool = False) -> tuple[Impairment, Impairment]:
    """(a_to_b, b_to_a) as the topology declares them; `rate`: the backend shapes the rate itself (netem)."""
    return impairment_of(ln.params, ln.a_to_b, rate), impairment_of(ln.params, ln.b_to_a, rate)


def impairment_of(p: LinkParams, override: Impair | None = None, rate: bool = False) -> Impairment:
    """One direction's settings: the link's (layered) values, then that direction's overrides.

    `rate`: the backend shapes the link's bandwidth itself (netem), instead of HTB.
    """
    def get(field: str) -> Any:
        value = getattr(override, field, None) if override is not None else None
        return getattr(p, field) if value is None else value

    loss_burst = get("loss_burst") or 1.0
    return Impairment(delay_ms=get("delay") or 0.0, jitter_ms=get("jitter") or 0.0,
                      jitter_dist=get("jitter_dist") or "normal", loss_pct=get("loss") or 0.0,
                      loss_model="gilbert" if loss_burst > 1 else "random", loss_burst=loss_burst,
                      duplicate_pct=get("duplicate") or 0.0, reorder_pct=get("reorder") or 0.0,
                      rate_bps=p.bw if rate else None)


def htb_wiring(ln: LinkLayout) -> dict[str, Any]:
    """A plain Mininet link, with HTB on both ends where the link has a rate: on a switch's end,
    priority queues by DSCP unless the link says `qos: false` (qos.py says why tc, and how)."""
    from mininet.link import Link

    from testbed.impair.qoslink import QosIntf  # Mininet: only in the building process

    kw: dict[str, Any] = {"cls": Link}
    if ln.params.bw is not None:
        bw: dict[str, Any] = {"bw": ln.params.bw / 1e6, "qos": ln.params.qos is not False}
        if ln.params.mtu:
            bw["queue_mtu"] = ln.params.mtu
        kw.update(cls1=QosIntf, cls2=QosIntf, params1=dict(bw), params2=dict(bw))
    return kw


class ImpairBackend(abc.ABC):
    """How links get impaired: wiring at build time, then start, then live changes.

    Subclasses implement the abstract methods; `apply` and `record` are shared so
    every backend's manifest record has the same core (`a`, `b`, `backend`, and
    each direction's `Impairment` as a dict) that `testbed link show` reads.
    """

    name: str = ""
    shapes_rate: bool = False  # True: the backend applies the link's bw itself (no HTB on impaired links)

    def __init__(self, reason: str = "") -> None:
        self.reason = reason  # why this backend was chosen, for `testbed doctor` and reports

    # -- build time ------------------------------------------------------------
    @abc.abstractmethod
    def wiring(self, ln: LinkLayout, run_id: str) -> dict[str, Any]:
        """Mininet `addLink` keyword arguments for any link (impaired or not): link and interface classes."""

    @abc.abstractmethod
    def root_interfaces(self, ln: LinkLayout, run_id: str) -> list[str]:
        """Root-namespace interfaces `wiring` makes for an impaired link (recorded before they exist)."""

    @abc.abstractmethod
    def start(self, ln: LinkLayout, ctx: StartContext) -> tuple[LinkImpairment, dict[str, Any]]:
        """Start impairing a built link; returns the live handle and the manifest record (JSON)."""

    def splice_interfaces(self, ln: LinkLayout, run_id: str) -> list[str]:
        """Root-namespace interfaces `splice` creates (recorded before they exist)."""
        return []

    def splice(self, ln: LinkLayout, ctx: StartContext, bridges: dict[str, str]) -> tuple[LinkImpairment, dict[str, Any]]:
        """Start impairing a built link that was created without an impairment point (`testbed link set`
        on any link). `bridges`: switch name -> its OVS bridge. By default the backend's `start` works
        on a live link (netem: qdiscs on the existing interfaces); a backend whose wiring differs for
        impaired links rewires the link first (userspace: a relay spliced in)."""
        return self.start(ln, ctx)

    # -- any process, from the record alone ---------------------------------------
    @abc.abstractmethod
    def change(self, record: dict[str, Any], direction: Direction, impairment: Impairment) -> None:
        """Make one direction of a running link do `impairment` now."""

    @abc.abstractmethod
    def stats(self, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Counters per direction of a running link."""

    def apply(self, record: dict[str, Any], direction: Direction, impairment: Impairment) -> None:
        """Change a running link and keep its record in step (the caller saves the manifest)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.change(record, direction, impairment)
        record[direction] = impairment.to_dict()

    # -- helpers for subclasses ------------------------------------------------------
    def impairments(self, ln: LinkLayout) -> tuple[Impairment, Impairment]:
        """(a_to_b, b_to_a) as the topology declares them for this backend."""
        return link_impairments(ln, self.shapes_rate)

    def record(self, ln: LinkLayout, a_to_b: Impairment, b_to_a: Impairment, **extra: Any) -> dict[str, Any]:
        """The manifest record: the common core plus what this backend needs to reach the link."""
        return {"a": ln.a, "b": ln.b, "backend": self.name, "a_to_b": a_to_b.to_dict(),
                "b_to_a": b_to_a.to_dict(), **extra}
