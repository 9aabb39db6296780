"""Derived facts about a valid topology: effective link settings, addresses, MACs.

Defaults are layered the way Containerlab resolves them (most specific wins):
link -> site (`link` inside a site, `uplink` between sites) -> file defaults;
node -> kind defaults -> node defaults.
"""
from __future__ import annotations

from fnmatch import fnmatchcase

from ipaddress import IPv4Address, IPv4Interface

from testbed import kinds
from testbed.topology.model import IMPAIR_FIELDS, Link, LinkParams, Node, NodeDefaults, Topology

LINK_FIELDS = ("bw", "mtu", "qos", *IMPAIR_FIELDS)
NODE_FIELDS = ("runtime", "image", "cpus", "memory")


def _layer(fields: tuple[str, ...], *layers: object) -> dict:
    out: dict = {}
    for f in fields:
        for layer in layers:
            value = getattr(layer, f, None) if layer is not None else None
            if value is not None:
                out[f] = value
                break
    return out


def link_params(topo: Topology, link: Link) -> LinkParams:
    """The settings a link really gets after layering site and file defaults.

    A link between two nodes of one site takes that site's `link`. A link whose
    ends are in different sites leaves a site, and that includes a link to a node
    with no site (the operator's aggregation switches): it takes the `uplink` of
    the end that is not the data centre, because the WAN belongs to the remote site.
    """
    a, b = (topo.node(n) for n in link.endpoints)
    if a.site == b.site:
        site_layer = topo.site(a.site).link if a.site else None
    else:
        site_layer = _uplink(topo, a, b)
    return LinkParams(**_layer(LINK_FIELDS, link, site_layer, topo.defaults.link))


def _uplink(topo: Topology, *ends: Node) -> LinkParams | None:
    """The `uplink` for a link leaving a site: a non-datacentre end's, preferring one that sets it."""
    sites = [topo.site(n.site) for n in ends if n.site]
    remote = [s for s in sites if s.type != "datacentre"] or sites  # dc <-> site-less: the dc's own
    return next((s.uplink for s in remote if s.uplink is not None), None)


def node_settings(topo: Topology, node: Node) -> NodeDefaults:
    """Runtime/image/limits after layering kind and file defaults."""
    kind_layer = topo.defaults.kinds.get(node.kind)
    merged = _layer(NODE_FIELDS, node, kind_layer, topo.defaults.node)
    merged.setdefault("runtime", "namespace")
    return NodeDefaults(**merged)


def assign_addresses(topo: Topology) -> dict[str, IPv4Interface]:
    """Give every host an address: explicit ones kept, the rest drawn from the pool in file order.

    Raises ValueError if the pool is exhausted (validate() reports it with a line).
    """
    pool = topo.defaults.addressing.pool
    taken: set[IPv4Address] = {n.ip.ip for n in topo.nodes if n.ip is not None}
    out: dict[str, IPv4Interface] = {}
    hosts = iter(pool.hosts())
    for node in topo.nodes:
        if not kinds.get(node.kind).host:
            continue
        if node.ip is not None:
            out[node.name] = IPv4Interface(f"{node.ip.ip}/{pool.prefixlen}")
            continue
        for addr in hosts:
            if addr not in taken:
                taken.add(addr)
                out[node.name] = IPv4Interface(f"{addr}/{pool.prefixlen}")
                break
        else:
            raise ValueError(f"address pool {pool} is exhausted at node {node.name!r}")
    return out


def assign_macs(topo: Topology) -> dict[str, str]:
    """Stable, locally administered MACs so the controller's plan can name them up front.

    Explicit MACs are kept; generated ones (02:7b:..., numbered in file order) skip
    any MAC given explicitly, so the two kinds never collide. Duplicates among the
    explicit ones are validate()'s to report.
    """
    taken = {n.mac.lower() for n in topo.nodes if kinds.get(n.kind).host and n.mac}
    out: dict[str, str] = {}
    index = 0
    for node in topo.nodes:
        if not kinds.get(node.kind).host:
            continue
        if node.mac:
            out[node.name] = node.mac.lower()
            continue
        while True:
            index += 1
            mac = "02:7b:%02x:%02x:%02x:%02x" % (
                (index >> 24) & 0xFF, (index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF)
            if mac not in taken:
                break
        out[node.name] = mac
    return out


def is_pattern(ref: str) -> bool:
    """A member written as a shell pattern (`dr-tablet-*`): node names never hold these characters."""
    return any(c in ref for c in "*?[")


def expand_members(topo: Topology, refs: list[str]) -> list[Node]:
    """Members may be node names, 'site:NAME', 'kind:KIND' or a pattern of host names ('dr-tablet-*',
    matched in file order, as templates stamp them out); return the host nodes meant."""
    out: dict[str, Node] = {}
    for ref in refs:
        if ref.startswith("site:"):
            picked = [n for n in topo.hosts if n.site == ref[5:]]
        elif ref.startswith("kind:"):
            picked = [n for n in topo.hosts if n.kind == ref[5:]]
        elif is_pattern(ref):
            picked = [n for n in topo.hosts if fnmatchcase(n.name, ref)]
        else:
            picked = [n for n in topo.nodes if n.name == ref]
        for n in picked:
            out[n.name] = n
    return list(out.values())


class Routes:
    """Host-to-host paths as the controller routes them, and their configured one-way delay.

    The controller forwards along per-destination shortest-path trees (hops, not
    delay: testbed.openflow.wiring), breadth first from the destination's switch,
    trying a switch's ports lowest first; ports are numbered in link order, so
    here a switch's links are tried in file order, and ties break the same way.
    Trees are computed once per destination switch. Needs a sound graph (each
    host on one link to a switch, every name known): validate() checks that first.
    """

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self._switch = {n.name for n in topo.switches}
        self._trunks: dict[str, list[tuple[int, str]]] = {s: [] for s in self._switch}  # switch -> (link, peer)
        self._home: dict[str, tuple[int, str]] = {}  # host -> (its link, its switch)
        for i, link in enumerate(topo.links):
            a, b = link.endpoints
            if a in self._switch and b in self._switch:
                self._trunks[a].append((i, b))
                self._trunks[b].append((i, a))
            elif b in self._switch:
                self._home[a] = (i, b)
            elif a in self._switch:
                self._home[b] = (i, a)
        self._trees: dict[str, dict[str, tuple[int, str]]] = {}
        self._params: dict[int, LinkParams] = {}

    def _tree(self, root: str) -> dict[str, tuple[int, str]]:
        """switch -> (link, next switch) toward `root`, breadth first."""
        if root not in self._trees:
            parent: dict[str, tuple[int, str]] = {}
            seen, todo = {root}, [root]
            for sw in todo:  # grows while iterated: a queue
                for i, peer in self._trunks[sw]:
                    if peer not in seen:
                        seen.add(peer)
                        parent[peer] = (i, sw)
                        todo.append(peer)
            self._trees[root] = parent
        return self._trees[root]

    def hops(self, src: str, dst: str) -> list[tuple[str, str, int]] | None:
        """(from, to, link index) for each link a frame from host `src` to host `dst` crosses; None: no path."""
        (src_link, sw), (dst_link, home) = self._home[src], self._home[dst]
        tree = self._tree(home)
        out = [(src, sw, src_link)]
        while sw != home:
            if sw not in tree:
                return None
            link, nxt = tree[sw]
            out.append((sw, nxt, link))
            sw = nxt
        out.append((home, dst, dst_link))
        return out

    def hop_delay_ms(self, frm: str, link_index: int) -> float:
        """One direction's configured delay of a link: its per-direction override, else the layered value."""
        link = self.topo.links[link_index]
        if link_index not in self._params:
            self._params[link_index] = link_params(self.topo, link)
        override = link.a_to_b if frm == link.endpoints[0] else link.b_to_a
        if override is not None and override.delay is not None:
            return override.delay
        return self._params[link_index].delay or 0.0

    def delay_ms(self, src: str, dst: str) -> tuple[float, list[str]] | None:
        """The configured one-way delay from host `src` to host `dst` and the nodes on the way; None: no path."""
        hops = self.hops(src, dst)
        if hops is None:
            return None
        return sum(self.hop_delay_ms(a, i) for a, _b, i in hops), [src, *(b for _a, b, _i in hops)]
