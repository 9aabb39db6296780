"""Where a workload goes: `to:` names a node, or a service (every node offering it)."""
from __future__ import annotations

from testbed.slicing.policy import targets
from testbed.topology.model import Topology


def resolve(topo: Topology, ref: str) -> list[str]:
    """Node names meant by `ref`: the node itself, or each node offering service `ref`."""
    if any(n.name == ref for n in topo.nodes):
        return [ref]
    return list(dict.fromkeys(n for n, _ in targets(topo, ref)))


def every_pair(topo: Topology, sources: list[str], ref: str) -> list[tuple[str, str]]:
    """(src, dst) pairs for workloads sent to every target: each source to each node `ref` means, but itself."""
    dsts = resolve(topo, ref)
    return [(src, dst) for src in sources for dst in dsts if dst != src]


def assign(topo: Topology, sources: list[str], ref: str) -> list[tuple[str, str]]:
    """(src, dst) pairs for session-style workloads: every source to the node `ref`; to a service,
    each source to one node offering it, in turn (a connection broker spreading users over a pool).
    Spare hosts (`spare: true`) get no sessions: they stand by for a lost host's (testbed.checks.desktops)."""
    dsts = resolve(topo, ref)
    spares = {n.name for n in topo.nodes if n.spare}
    dsts = [d for d in dsts if d not in spares] or dsts
    if not dsts:
        return []
    out = []
    for i, src in enumerate(sources):
        ring = [d for d in dsts if d != src] or dsts
        out.append((src, ring[i % len(ring)]))
    return [(s, d) for s, d in out if s != d]


def service_port(topo: Topology, node: str, service: str) -> int | None:
    """The port `node` offers `service` on (its own setting, or the catalogue's), None if it does not."""
    for n in topo.nodes:
        if n.name == node:
            return next((s.port for s in n.services if s.name == service), None)
    return None
