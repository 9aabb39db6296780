"""Derived facts about a valid topology: effective link settings, addresses, MACs.

Defaults are layered the way Containerlab resolves them (most specific wins):
link -> site (`link` inside a site, `uplink` between sites) -> file defaults;
node -> kind defaults -> node defaults.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

from testbed import kinds
from testbed.topology.model import IMPAIR_FIELDS, Link, LinkParams, Node, NodeDefaults, Topology

LINK_FIELDS = ("bw", "mtu", *IMPAIR_FIELDS)
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


def expand_members(topo: Topology, refs: list[str]) -> list[Node]:
    """Members may be node names, 'site:NAME' or 'kind:KIND'; return the host nodes meant."""
    out: dict[str, Node] = {}
    for ref in refs:
        if ref.startswith("site:"):
            picked = [n for n in topo.hosts if n.site == ref[5:]]
        elif ref.startswith("kind:"):
            picked = [n for n in topo.hosts if n.kind == ref[5:]]
        else:
            picked = [n for n in topo.nodes if n.name == ref]
        for n in picked:
            out[n.name] = n
    return list(out.values())
