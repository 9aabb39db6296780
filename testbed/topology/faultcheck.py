"""Checks on the file's fault drills and spare hosts that need the whole topology.

Kept apart from `validate.py` (which calls them) because the drill kinds grow:
each kind's own keys are only meaningful for that kind, and a key given to the
wrong kind is an error at its own line rather than silently ignored.
"""
from __future__ import annotations

from testbed import kinds
from testbed.topology.model import Topology

MAX_CROSS_RATE_BPS = 1_000_000_000  # congestion is bounded: at most 1 Gbit/s ...
MAX_CROSS_S = 60.0  # ... for at most a minute


def spares_for(topo: Topology, host: str) -> list[str]:
    """The spare hosts standing in for `host`: spares offering a service `host` offers (not itself)."""
    try:
        offered = {s.name for s in topo.node(host).services}
    except KeyError:
        return []
    return [n.name for n in topo.nodes if n.spare and n.name != host and offered & {s.name for s in n.services}]


def check_spares(topo: Topology, p) -> None:
    for i, n in enumerate(topo.nodes):
        if not n.spare:
            continue
        mine = {s.name for s in n.services}
        if not mine:
            p(("nodes", i, "spare"), "a spare stands in for a host's services: list the services it offers")
        elif not any(not m.spare and mine & {s.name for s in m.services} for m in topo.nodes):
            p(("nodes", i, "spare"), f"no other host offers {', '.join(sorted(mine))}: nothing to stand in for")


def _is_link_ref(ref: str, topo: Topology) -> bool:
    if ":" not in ref:
        return False
    a, b = ref.split(":", 1)
    return any(set(link.endpoints) == {a, b} for link in topo.links)


def check_faults(topo: Topology, node_kind: dict[str, str], services: set[str], p) -> None:
    for i, f in enumerate(topo.faults):
        where = ("faults", i)
        if f.type not in ("controller-kill", "congestion"):
            if f.target is None:
                p((*where, "target"), f"a {f.type} fault needs a target")
            elif f.type == "node-down" and f.target not in node_kind:
                p((*where, "target"), f"unknown node {f.target!r}")
            elif f.type in ("link-down", "impair") and not _is_link_ref(f.target, topo):
                p((*where, "target"), f"unknown link {f.target!r} (write 'NODE-A:NODE-B')")
        if f.type == "impair" and not f.set:
            p((*where, "set"), "an impair fault needs the link's settings, e.g. set: [delay=50ms, loss=2%]")
        _desktop(topo, f, where, node_kind, p)
        _congestion(topo, f, where, node_kind, services, p)


def _desktop(topo: Topology, f, where: tuple, node_kind: dict[str, str], p) -> None:
    if f.repair is not None and f.desktop != "traditional":
        p((*where, "repair"), "`repair` is the repair time of a traditional workstation: only with desktop: traditional")
    if f.desktop is None:
        return
    if f.type != "node-down":
        p((*where, "desktop"), f"a desktop-failure arm is a node-down fault (this one is {f.type})")
        return
    if f.target not in node_kind:
        return  # reported above
    if kinds.is_switch(node_kind[f.target]):
        p((*where, "target"), f"{f.target!r} is a switch; a desktop-failure arm loses a host")
    elif f.desktop == "traditional" and f.repair is None:
        p((*where, "repair"), "a traditional arm needs the workstation's repair time, e.g. repair: 4h (the paper's)")
    elif f.desktop == "cloud" and not spares_for(topo, f.target):
        p((*where, "target"), f"no spare stands in for {f.target!r}: mark a host offering its services `spare: true`")


def _congestion(topo: Topology, f, where: tuple, node_kind: dict[str, str], services: set[str], p) -> None:
    if f.type != "congestion":
        for key, value in (("from", f.src), ("to", f.dst), ("rate", f.rate)):
            if value is not None:
                p((*where, key), f"`{key}` belongs to a congestion fault (this one is {f.type})")
        return
    if f.target is not None:
        p((*where, "target"), "a congestion fault is placed by `from` and `to` (its path), not `target`")
    if f.src is None or f.src not in node_kind or kinds.is_switch(node_kind[f.src]):
        p((*where, "from"), "a congestion fault needs `from`: the host sending the cross-traffic"
          + (f" ({f.src!r} is not one)" if f.src is not None else ""))
    if f.dst is None or (f.dst not in services and (f.dst not in node_kind or kinds.is_switch(node_kind[f.dst]))):
        p((*where, "to"), "a congestion fault needs `to`: a host or service offering iperf"
          + (f" ({f.dst!r} is neither)" if f.dst is not None else ""))
    elif not any(s.name == "iperf" for n in topo.nodes if f.dst in (n.name, *(x.name for x in n.services))
                 for s in n.services):
        p((*where, "to"), f"nothing at {f.dst!r} offers iperf (the cross-traffic is iperf3): add `iperf` to its services")
    if f.rate is None:
        p((*where, "rate"), "a congestion fault needs `rate`, e.g. rate: 100Mbit (bounded: at most 1Gbit)")
    elif not 0 < f.rate <= MAX_CROSS_RATE_BPS:
        p((*where, "rate"), "cross-traffic is bounded: at most 1Gbit")
    if f.duration is not None and f.duration > MAX_CROSS_S * 1000:
        p((*where, "duration"), f"cross-traffic is bounded: at most {MAX_CROSS_S:g}s")
