"""The slice policy as data: the single source of truth for isolation.

Compiled from the topology file: a slice's members (UEs, hosts, whole sites or
kinds — the paper's pre-registered whitelist) may reach the services the slice
allows, on the nodes that offer them. Everything else must be blocked. The
controller app turns this into OpenFlow rules; the prober turns it into the
should-pass / must-fail matrix; both read the same Policy, so a test that the
network matches the policy is meaningful.

Infrastructure flows that no slice names are granted implicitly and labelled
`infra`: what each node kind declares it needs (testbed.kinds: a gNB reaches
each UPF's GTP-U service, N3).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from testbed import kinds
from testbed.topology.model import Service, Topology
from testbed.topology.resolve import expand_members

INFRA = "infra"


@dataclass(frozen=True, order=True)
class Grant:
    """`src` may open `service` on `dst`, in `slice` (replies are implied)."""

    slice: str
    src: str
    dst: str
    proto: str
    port: int
    service: str


@dataclass
class Policy:
    grants: list[Grant] = field(default_factory=list)
    members: dict[str, list[str]] = field(default_factory=dict)  # slice -> member hosts
    # Host pairs that resolve each other's address (ARP) without a grant between them: a UPF and the
    # servers its PDU sessions reach (their replies to a session go via the UPF). testbed.ran.network.
    neighbours: list[tuple[str, str]] = field(default_factory=list)

    def allowed(self, src: str, dst: str, proto: str, port: int) -> bool:
        return any(g.src == src and g.dst == dst and g.proto == proto and g.port == port for g in self.grants)

    def pairs(self) -> list[tuple[str, str]]:
        """(src, dst) host pairs with at least one grant: ICMP echo is allowed between them."""
        return list(dict.fromkeys((g.src, g.dst) for g in self.grants))

    def slices_of(self, host: str) -> list[str]:
        return [s for s, ms in self.members.items() if host in ms]


def targets(topo: Topology, ref: str) -> list[tuple[str, Service]]:
    """('emr') -> every (node, service) offering emr; ('pacs:pacs') -> that node's service."""
    node_name, svc = ref.split(":", 1) if ":" in ref else (None, ref)
    return [(n.name, s) for n in topo.nodes if node_name in (None, n.name) for s in n.services if s.name == svc]


def compile_policy(topo: Topology, extra_members: dict[str, list[str]] | None = None,
                   revoked: dict[str, list[str]] | None = None) -> Policy:
    """Grants from every slice; `extra_members`/`revoked` are run-time grant/revoke changes."""
    pol = Policy()
    extra_members = extra_members or {}
    revoked = revoked or {}
    seen: set[Grant] = set()
    for sl in topo.slices:
        members = [n.name for n in expand_members(topo, sl.members)]
        members += [m for m in extra_members.get(sl.name, []) if m not in members]
        members = [m for m in members if m not in revoked.get(sl.name, [])]
        pol.members[sl.name] = members
        for ref in sl.services:
            for dst, svc in targets(topo, ref):
                for src in members:
                    if src != dst:
                        g = Grant(sl.name, src, dst, svc.proto, svc.port, svc.name)
                        if g not in seen:
                            seen.add(g)
                            pol.grants.append(g)
    pol.members[INFRA] = []
    for src in topo.hosts:
        for need in kinds.get(src.kind).infra:
            if src.name not in pol.members[INFRA]:
                pol.members[INFRA].append(src.name)
            for dst in topo.hosts:
                if dst.kind == need.to_kind and dst.name != src.name:
                    for svc in dst.services:
                        if svc.name == need.service:
                            pol.grants.append(Grant(INFRA, src.name, dst.name, svc.proto, svc.port, svc.name))
    return pol
