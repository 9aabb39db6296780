"""Derived facts about a valid topology: effective link settings, addresses, MACs.

Defaults are layered the way Containerlab resolves them (most specific wins):
link -> site (`link` inside a site, `uplink` between sites) -> file defaults;
node -> kind defaults -> node defaults.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

from testbed.topology.model import HOST_KINDS, Link, LinkParams, Node, NodeDefaults, Topology

LINK_FIELDS = ("bw", "delay", "jitter", "loss", "mtu")
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
    """The settings a link really gets after layering site and file defaults."""
    a, b = (topo.node(n) for n in link.endpoints)
    site_layer = None
    if a.site and b.site and a.site != b.site:
        # Prefer the uplink of the non-datacentre end: the WAN belongs to the remote site.
        remote = b if _site_type(topo, a.site) == "datacentre" else a
        site_layer = topo.site(remote.site).uplink if remote.site else None
    else:
        site_name = a.site or b.site
        site_layer = topo.site(site_name).link if site_name else None
    return LinkParams(**_layer(LINK_FIELDS, link, site_layer, topo.defaults.link))


def _site_type(topo: Topology, name: str) -> str:
    return topo.site(name).type


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
        if node.kind not in HOST_KINDS:
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
    """Stable, locally administered MACs so the controller's plan can name them up front."""
    out: dict[str, str] = {}
    index = 0
    for node in topo.nodes:
        if node.kind not in HOST_KINDS:
            continue
        index += 1
        out[node.name] = node.mac.lower() if node.mac else "02:7b:%02x:%02x:%02x:%02x" % (
            (index >> 24) & 0xFF, (index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF)
    return out


def service_providers(topo: Topology, service: str) -> list[Node]:
    """Nodes that offer a service by name."""
    return [n for n in topo.nodes if any(s.name == service for s in n.services)]


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
