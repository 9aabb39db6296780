"""The concrete shape of one run of a topology: internal names, ports, addresses.

Everything here is decided before anything is created, so the controller's plan,
the manifest and the Mininet build all agree, and so it can be unit-tested
without root. Switch ports are numbered 1.. in link order (OVS ofport_request).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Interface

from testbed import kinds, naming
from testbed.openflow.wiring import Wiring
from testbed.topology.model import Impair, LinkParams, Topology
from testbed.topology.resolve import assign_addresses, assign_macs, link_params


@dataclass(frozen=True)
class LinkLayout:
    index: int
    a: str  # user names
    b: str
    port_a: int
    port_b: int
    intf_a: str  # interface names (in the node's namespace for hosts, root ns for switches)
    intf_b: str
    params: LinkParams
    a_to_b: Impair | None = None  # per-direction overrides from the file
    b_to_a: Impair | None = None


@dataclass
class Layout:
    run_id: str
    internal: dict[str, str] = field(default_factory=dict)  # user name -> internal name
    ips: dict[str, IPv4Interface] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)
    dpids: dict[str, str] = field(default_factory=dict)  # switch user name -> dpid hex
    links: list[LinkLayout] = field(default_factory=list)

    def wiring(self) -> Wiring:
        w = Wiring(dpids=dict(self.dpids))
        for ln in self.links:
            for me, my_port, peer, peer_port in ((ln.a, ln.port_a, ln.b, ln.port_b), (ln.b, ln.port_b, ln.a, ln.port_a)):
                if me in self.dpids:
                    w.ports.setdefault(me, []).append((my_port, peer, peer_port if peer in self.dpids else None))
                    if peer not in self.dpids:
                        w.hosts[peer] = (me, my_port, self.macs[peer])
        return w

    def switch_ends(self, ln: LinkLayout) -> list[str]:
        """The link's interfaces that are switch ports (in the root namespace)."""
        return [intf for end, intf in ((ln.a, ln.intf_a), (ln.b, ln.intf_b)) if end in self.dpids]

    def root_interfaces(self) -> list[str]:
        """Interfaces this run creates in the root namespace (switch ports)."""
        return [intf for ln in self.links for intf in self.switch_ends(ln)]


def make_layout(topo: Topology, run_id: str) -> Layout:
    lay = Layout(run_id=run_id)
    h = s = 0
    for node in topo.nodes:
        if kinds.get(node.kind).switch:
            lay.internal[node.name] = naming.switch_name(run_id, s)
            lay.dpids[node.name] = naming.dpid(s)
            s += 1
        else:
            lay.internal[node.name] = naming.host_name(run_id, h)
            h += 1
    lay.ips = assign_addresses(topo)
    lay.macs = assign_macs(topo)
    next_port: dict[str, int] = {}
    for i, link in enumerate(topo.links):
        ports = []
        for end in link.endpoints:
            base = 1 if end in lay.dpids else 0
            port = next_port.get(end, base)
            next_port[end] = port + 1
            ports.append(port)
        a, b = link.endpoints
        lay.links.append(LinkLayout(
            index=i, a=a, b=b, port_a=ports[0], port_b=ports[1],
            intf_a=f"{lay.internal[a]}-eth{ports[0]}", intf_b=f"{lay.internal[b]}-eth{ports[1]}",
            params=link_params(topo, link), a_to_b=link.a_to_b, b_to_a=link.b_to_a,
        ))
    return lay
