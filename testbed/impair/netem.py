"""Kernel backend: sch_netem as the root egress qdisc, one per direction.

Preferred where the kernel has sch_netem (it costs no CPU in userspace and is
what Mininet's TCLink uses); this platform lacks it, so the userspace relay is
the fallback. Mapping of each `Impairment` field to netem arguments is done by
`netem_args`, a pure function so it is unit-tested without root.
"""
from __future__ import annotations

import functools
import json
import subprocess
from typing import TYPE_CHECKING, Any

from testbed.impair.base import (DIRECTIONS, Direction, ImpairBackend, ImpairError, Port, StartContext, htb_wiring,
                                 needs_impairment)
from testbed.impair.spec import Impairment
from testbed.impair.units import format_ms

if TYPE_CHECKING:
    from testbed.openflow.layout import LinkLayout

# veth, not dummy: some kernels (this one) have no dummy driver but may have netem.
PROBE = "ip link add tbimpd0 type veth peer name tbimpd1 && tc qdisc add dev tbimpd0 root netem delay 1ms"


@functools.cache
def netem_available() -> bool:
    """Whether sch_netem works, probed in a throwaway network namespace.

    `unshare -n` gives the probe a namespace of its own that vanishes with it,
    so nothing on the host is created, changed or left behind.
    """
    try:
        r = subprocess.run(["unshare", "-n", "sh", "-c", PROBE], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


ORDER_KEEPING_RATE = "100gbit"


def _pct(v: float) -> str:
    return f"{v:.6g}%"


def netem_args(imp: Impairment) -> list[str]:
    """netem arguments (after 'netem') equivalent to `imp`; see spec.py for semantics."""
    args = ["limit", str(imp.limit)]
    if not imp.up:
        return args + ["loss", "random", "100%"]
    if imp.delay_ms or imp.jitter_ms:
        args += ["delay", format_ms(imp.delay_ms)]
        if imp.jitter_ms:
            args.append(format_ms(imp.jitter_ms))
            if imp.jitter_dist != "uniform":  # netem without a table is uniform
                args += ["distribution", imp.jitter_dist]
    if imp.loss_pct:
        if imp.loss_model == "gilbert":
            p, r = imp.gilbert_p_r()
            args += ["loss", "gemodel", _pct(p * 100), _pct(r * 100), "100%", "0%"]
        else:
            args += ["loss", "random", _pct(imp.loss_pct)]
    if imp.duplicate_pct:
        args += ["duplicate", _pct(imp.duplicate_pct)]
    if imp.reorder_pct and imp.delay_ms:
        args += ["reorder", _pct(imp.reorder_pct), "gap", str(imp.reorder_gap)]
    if imp.rate_bps:
        args += ["rate", f"{imp.rate_bps}bit"]
    elif imp.jitter_ms:  # netem keeps order once it has a rate (each packet leaves after the one before it):
        args += ["rate", ORDER_KEEPING_RATE]  # jitter must not reorder (spec.py); 1500 B take 0.12 us at this
    return args


def _tc(port: Port, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*port.ns_prefix(), "tc", *args], capture_output=True, text=True, check=False)


class NetemLink:
    """Live netem impairment of one link: a_to_b on if_b's egress, b_to_a on if_a's.

    `create` installs the qdiscs; the constructor only attaches to qdiscs that
    exist already (another process changing a running link from its record).
    """

    def __init__(self, ports: dict[Direction, Port], current: dict[Direction, Impairment] | None = None) -> None:
        self.ports = ports  # egress port per direction
        self.current: dict[Direction, Impairment] = dict(current or {})
        self.stopped = False
        self.pid: int | None = None  # the kernel does the work: no helper process

    @classmethod
    def create(cls, if_a: Port, if_b: Port, a_to_b: Impairment, b_to_a: Impairment) -> NetemLink:
        """Install netem on both egresses (replacing any root qdisc); undo both on failure."""
        link = cls({"a_to_b": if_b, "b_to_a": if_a})
        try:
            for d, imp in (("a_to_b", a_to_b), ("b_to_a", b_to_a)):
                link._apply(d, imp, "replace")
        except ImpairError:
            link.stop()
            raise
        return link

    def _apply(self, direction: Direction, imp: Impairment, verb: str) -> None:
        port = self.ports[direction]
        r = _tc(port, "qdisc", verb, "dev", port.ifname, "root", "netem", *netem_args(imp))
        if r.returncode != 0:
            raise ImpairError(f"tc qdisc {verb} netem on {port.ifname}: {r.stderr.strip()}")
        self.current[direction] = imp

    def set(self, direction: Direction, impairment: Impairment) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self._apply(direction, impairment, "change")

    def stats(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for d, port in self.ports.items():
            r = _tc(port, "-s", "-j", "qdisc", "show", "dev", port.ifname, "root")
            q: dict[str, Any] = {}
            try:
                q = next((x for x in json.loads(r.stdout or "[]") if x.get("kind") == "netem"), {})
            except ValueError:
                pass
            out[d] = {
                "tx_packets": q.get("packets", 0), "tx_bytes": q.get("bytes", 0),
                "dropped": q.get("drops", 0), "queued": q.get("qlen", 0),
                "impairment": self.current[d].to_dict() if d in self.current else None,
            }
        return out

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        for d in self.current:
            port = self.ports[d]
            _tc(port, "qdisc", "del", "dev", port.ifname, "root")


class NetemBackend(ImpairBackend):
    """Netem on the link's own interfaces, in the nodes' namespaces: no extra interfaces or processes."""

    name = "netem"
    shapes_rate = True  # netem replaces the root qdisc, so HTB could not stay: netem does the rate

    def wiring(self, ln: LinkLayout, run_id: str) -> dict[str, Any]:
        if needs_impairment(ln):
            from mininet.link import Link

            return {"cls": Link}
        return htb_wiring(ln)

    def root_interfaces(self, ln: LinkLayout, run_id: str) -> list[str]:
        return []

    def start(self, ln: LinkLayout, ctx: StartContext) -> tuple[NetemLink, dict[str, Any]]:
        ab, ba = self.impairments(ln)
        pid_a, pid_b = ctx.netns_pid.get(ln.a), ctx.netns_pid.get(ln.b)
        link = NetemLink.create(Port(ln.intf_a, pid=pid_a), Port(ln.intf_b, pid=pid_b), ab, ba)
        return link, self.record(ln, ab, ba, intf_a=ln.intf_a, intf_b=ln.intf_b, pid_a=pid_a, pid_b=pid_b)

    @staticmethod
    def _attach(record: dict[str, Any]) -> NetemLink:
        """The running link's qdiscs, reached from its manifest record (not re-created)."""
        ports: dict[Direction, Port] = {"a_to_b": Port(record["intf_b"], pid=record["pid_b"]),
                                        "b_to_a": Port(record["intf_a"], pid=record["pid_a"])}
        return NetemLink(ports, {d: Impairment.from_dict(record[d]) for d in DIRECTIONS})

    def change(self, record: dict[str, Any], direction: Direction, impairment: Impairment) -> None:
        self._attach(record).set(direction, impairment)

    def stats(self, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return self._attach(record).stats()
