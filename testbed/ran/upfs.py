"""Which UPFs exist and which one serves each PDU session: central, or a MEC UPF at the edge.

A binding names a UPF and the slices and sites it serves (empty: all of them).
The file's `ran.upfs` gives them (then they are the complete list); without it
they are derived from the graph:

- a node of a kind whose `ran_role` is "upf" is a UPF;
- UPFs in a datacentre site are central: every slice, every site (if none is in
  the file's datacentre, the plan adds one there, as below; with no datacentre
  site at all, the first UPF of the file is central);
- any other UPF is a MEC UPF doing local breakout: for its own site when that
  site has a gNB, or, when it has none or its site has no gNB (an aggregation
  point), for the sites whose gNBs are nearer to it than to every central UPF;
  and for the slices that grant a service on a host beside it (same site or
  same switch), or every slice if none does;
- with no UPF node at all, the plan adds one central UPF (an implicit node the
  engine creates, as it does the core).

A session is served by the most specific binding that covers its slice and its
gNB's site (site and slice > site > slice > neither), then by the UPF fewest hops
from the gNB, then by file order.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from testbed import kinds
from testbed.errors import Problem
from testbed.ran.errors import RanPlanError
from testbed.slicing.policy import INFRA, compile_policy
from testbed.topology.model import Topology
from testbed.topology.resolve import Routes

CENTRAL, MEC = "central", "mec"


@dataclass(frozen=True)
class UpfBinding:
    """A UPF node and what it serves (empty: everything): what `ran.upfs` entries are, for callers
    that bind UPFs without a file (tests, tools)."""

    name: str
    slices: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()


@dataclass(frozen=True)
class Upf:
    """A GTP-U endpoint; `sites`/`slices` empty mean every site / every slice."""

    name: str
    address: IPv4Address
    role: str  # CENTRAL (serves every site) or MEC (local breakout for some sites)
    sites: tuple[str, ...]
    slices: tuple[str, ...]
    implicit: bool = False  # not in the file: the engine adds it under this name


def is_upf(topo: Topology, name: str) -> bool:
    node = topo.node(name)
    return kinds.get(node.kind).ran_role == "upf"


def plan_upfs(topo: Topology, addresses: dict[str, IPv4Address], bindings: Iterable[Any] | None,
              make_implicit: Callable[[], tuple[str, IPv4Address]], problems: list[Problem]) -> list[Upf]:
    """The plan's UPFs: from explicit bindings when given (then they are the complete list), else derived."""
    if bindings is not None:
        return _explicit(topo, addresses, list(bindings), problems)
    nodes = [n for n in topo.nodes if is_upf(topo, n.name)]
    if not nodes:
        name, address = make_implicit()
        return [Upf(name, address, CENTRAL, (), (), implicit=True)]
    dc_sites = {s.name for s in topo.sites if s.type == "datacentre"}
    central = [n for n in nodes if n.site in dc_sites]
    out = []
    if not central and dc_sites:  # UPFs only at the edge: the data centre still gets its central one
        name, address = make_implicit()
        out.append(Upf(name, address, CENTRAL, (), (), implicit=True))
    elif not central:  # no data centre to put one in: the file's first UPF serves everything else
        central = nodes[:1]
    routes = Routes(topo)
    gnb_sites = {g.site for g in topo.nodes if kinds.get(g.kind).ran_role == "gnb" and g.site}
    for n in nodes:
        if n in central:
            out.append(Upf(n.name, addresses[n.name], CENTRAL, (), ()))
            continue
        sites = (n.site,) if n.site in gnb_sites else _nearer_sites(topo, routes, n.name, [c.name for c in central] or
                                                                    _dc_hosts(topo, dc_sites)[:1])
        out.append(Upf(n.name, addresses[n.name], MEC, sites, _local_slices(topo, n.name)))
    return out


def _explicit(topo: Topology, addresses: dict[str, IPv4Address], bindings: list[Any],
              problems: list[Problem]) -> list[Upf]:
    slices = {s.name for s in topo.slices}
    sites = {s.name for s in topo.sites}
    out, seen = [], set()
    for i, b in enumerate(bindings):
        where = ("ran", "upfs", i)
        if b.name in seen:
            problems.append(topo.problem(where, f"UPF {b.name!r} is bound twice"))
        seen.add(b.name)
        if b.name not in addresses or not is_upf(topo, b.name):
            problems.append(topo.problem(where, f"{b.name!r} is not a UPF node (a node of kind upf)"))
            continue
        for what, refs, known in (("slices", b.slices, slices), ("sites", b.sites, sites)):
            for ref in refs:
                if ref not in known:
                    problems.append(topo.problem((*where, what), f"unknown {what[:-1]} {ref!r}"))
        role = MEC if b.sites else CENTRAL
        out.append(Upf(b.name, addresses[b.name], role, tuple(b.sites), tuple(b.slices)))
    if not out and not problems:
        problems.append(topo.problem(("ran", "upfs"), "no UPF is bound: every PDU session needs one"))
    return out


def _dc_hosts(topo: Topology, dc_sites: set[str]) -> list[str]:
    """The data centre's hosts: distances to an added central UPF (not a node yet; it joins the data
    centre's first switch, ran.network) are taken to the first of them."""
    return [n.name for n in topo.nodes if not kinds.is_switch(n.kind) and n.site in dc_sites]


def _hops(routes: Routes, a: str, b: str) -> int:
    path = routes.hops(a, b)
    return len(path) if path is not None else 1 << 30


def _nearer_sites(topo: Topology, routes: Routes, upf: str, central: list[str]) -> tuple[str, ...]:
    """Sites with a gNB strictly nearer (in hops) to `upf` than to every central UPF."""
    out: dict[str, None] = {}
    for g in topo.nodes:
        if kinds.get(g.kind).ran_role == "gnb" and g.site:
            mine = _hops(routes, g.name, upf)
            if all(mine < _hops(routes, g.name, c) for c in central):
                out[g.site] = None
    return tuple(out)


def _local_slices(topo: Topology, upf: str) -> tuple[str, ...]:
    """Slices granting a service on a host beside the UPF (its site, or its switch when it has none)."""
    node = topo.node(upf)
    switch_of = {}
    for link in topo.links:
        a, b = link.endpoints
        for host, other in ((a, b), (b, a)):
            if kinds.get(topo.node(other).kind).switch:
                switch_of[host] = other
    beside = {n.name for n in topo.hosts if n.name != upf and (
        (node.site is not None and n.site == node.site)
        or (switch_of.get(n.name) is not None and switch_of.get(n.name) == switch_of.get(upf)))}
    policy = compile_policy(topo)
    return tuple(dict.fromkeys(g.slice for g in policy.grants if g.slice != INFRA and g.dst in beside))


class Selector:
    """Picks the UPF of a session from its slice and its gNB (see the module docstring for the order)."""

    def __init__(self, topo: Topology, upfs: list[Upf]) -> None:
        self.topo = topo
        self.upfs = upfs
        self._routes = Routes(topo)

    def select(self, slice_name: str, gnb: str, site: str | None) -> str:
        best: tuple[tuple[int, int, int], str] | None = None
        for i, u in enumerate(self.upfs):
            if u.slices and slice_name not in u.slices:
                continue
            if u.sites and site not in u.sites:
                continue
            specific = 2 * bool(u.sites) + bool(u.slices)
            hops = 0 if u.implicit else _hops(self._routes, gnb, u.name)
            key = (-specific, hops, i)
            if best is None or key < best[0]:
                best = (key, u.name)
        if best is None:
            raise RanPlanError([self.topo.problem(("ran",), f"no UPF serves slice {slice_name!r} at gNB {gnb!r} "
                                                             f"(site {site}); bind a central UPF (no sites)")])
        return best[1]
