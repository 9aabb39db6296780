"""Where a workload goes: `to:` names a node, or a service (every node offering it)."""
from __future__ import annotations

from testbed.slicing.policy import targets
from testbed.topology.model import Topology


def resolve(topo: Topology, ref: str) -> list[str]:
    """Node names meant by `ref`: the node itself, or each node offering service `ref`."""
    if any(n.name == ref for n in topo.nodes):
        return [ref]
    return list(dict.fromkeys(n for n, _ in targets(topo, ref)))
