"""How the built network is wired in switch-port terms, and the shortest-path trees over it.

Both the plain forwarding plan and the slicing plan route along these trees:
paths are shortest paths over the switch graph, so parallel links and loops are
fine (unicast follows per-destination trees, broadcast one spanning tree).
Pure functions over plain data, so they unit-test without root.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Wiring:
    """How the built network is connected, in switch-port terms."""

    dpids: dict[str, str]  # switch name -> dpid (hex)
    # switch -> list of (local port, peer name, peer port or None for hosts)
    ports: dict[str, list[tuple[int, str, int | None]]] = field(default_factory=dict)
    hosts: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # host -> (switch, port, mac)

    def neighbours(self, sw: str) -> list[tuple[int, str]]:
        """(local port, neighbour switch), lowest port first so paths are deterministic."""
        return sorted((p, peer) for p, peer, pp in self.ports.get(sw, []) if peer in self.dpids)

    def trunks(self, sw: str) -> list[tuple[int, str, int]]:
        """(local port, neighbour switch, its port): both ends of each switch-switch link, lowest local port first.

        With parallel links, the two ends of one link must be used together: a
        broadcast sent on one link and expected back on another is dropped.
        """
        return sorted((p, peer, pp) for p, peer, pp in self.ports.get(sw, []) if peer in self.dpids and pp is not None)


def _bfs_edges(w: Wiring, root: str, seen: set[str]):
    """Yield the tree edges (switch, its port, peer, the peer's port back) of a BFS from `root`.

    `seen` holds the switches already reached (including `root`) and is updated.
    """
    todo = deque([root])
    while todo:
        sw = todo.popleft()
        for port, peer, back in w.trunks(sw):
            if peer in seen:
                continue
            seen.add(peer)
            yield sw, port, peer, back
            todo.append(peer)


def toward(w: Wiring, root: str) -> dict[str, int]:
    """For every switch, the port on its shortest path toward `root`."""
    return {peer: back for _sw, _port, peer, back in _bfs_edges(w, root, {root})}


def spanning_tree_ports(w: Wiring) -> dict[str, set[int]]:
    """Ports of each switch on one BFS spanning tree (per connected component)."""
    tree: dict[str, set[int]] = {sw: set() for sw in w.dpids}
    seen: set[str] = set()
    for root in sorted(w.dpids):
        if root in seen:
            continue
        seen.add(root)
        for sw, port, peer, back in _bfs_edges(w, root, seen):
            tree[sw].add(port)
            tree[peer].add(back)
    return tree
