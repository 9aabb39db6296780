"""The full isolation matrix, derived from the slice policy (pure; no root needed).

Rows, for every ordered pair of hosts (src != dst):
  service  src -> each service dst offers: expect pass iff the policy grants it
           (members of other slices, non-members, servers, gNBs alike)
  icmp     src -> dst echo request: expect pass iff (src, dst) is a granted pair
           (a grant src -> dst lets src ping dst; dst pinging src is a new
           conversation, so it needs its own grant; replies are implied)
  port     for each granted pair, ports dst does not offer to src: well-known
           admin ports, the granted port + 1, and the granted port in the other
           protocol (catches rules that match too wide). Reported as the
           `forbidden-port` attack.

Each row gets a unique 8-character id, carried in its packets as a token.
"""
from __future__ import annotations

from dataclasses import dataclass

from testbed.slicing.policy import Policy
from testbed.topology.model import Topology

ADMIN_PORTS: tuple[tuple[str, int], ...] = (("tcp", 22), ("tcp", 3389))
CATEGORIES = ("service", "icmp", "port")


@dataclass(frozen=True)
class Probe:
    id: str
    category: str  # 'service' | 'icmp' | 'port'
    src: str
    dst: str
    proto: str  # 'tcp' | 'udp' | 'icmp'
    port: int  # 0 for icmp
    service: str  # service name, 'ping', or 'tcp/22'-style for non-service ports
    expect: str  # 'pass' | 'fail'
    why: str

    @property
    def name(self) -> str:
        what = "icmp echo" if self.proto == "icmp" else f"{self.service} ({self.proto}/{self.port})"
        return f"{self.src} -> {self.dst} {what}"


def _why_not(pol: Policy, src: str) -> str:
    sl = [s for s in pol.slices_of(src)]
    return f"{src} is in {', '.join(sl)}; no grant" if sl else f"{src} is in no slice"


def build_matrix(topo: Topology, pol: Policy) -> list[Probe]:
    hosts = [n.name for n in topo.hosts]
    offers = {n.name: [(s.proto, s.port, s.name) for s in n.services] for n in topo.hosts}
    granted: dict[tuple[str, str, str, int], list[str]] = {}
    for g in pol.grants:
        granted.setdefault((g.src, g.dst, g.proto, g.port), []).append(g.slice)
    pairs = set(pol.pairs())
    rows: list[Probe] = []
    seen: set[tuple[str, str, str, int]] = set()

    def add(cat: str, src: str, dst: str, proto: str, port: int, svc: str, why_pass: list[str] | None) -> None:
        key = (src, dst, proto, port)
        if key in seen:
            return
        seen.add(key)
        expect = "pass" if why_pass else "fail"
        why = f"granted by {', '.join(sorted(set(why_pass)))}" if why_pass else _why_not(pol, src)
        rows.append(Probe(f"{len(rows):08x}", cat, src, dst, proto, port, svc, expect, why))

    for src in hosts:
        for dst in hosts:
            if dst == src:
                continue
            for proto, port, svc in offers[dst]:
                add("service", src, dst, proto, port, svc, granted.get((src, dst, proto, port)))
            slices = sorted({s for (a, b, _p, _n), ss in granted.items() if a == src and b == dst for s in ss})
            add("icmp", src, dst, "icmp", 0, "ping", slices if (src, dst) in pairs else None)
    for src, dst in sorted(pairs):
        mine = {(p, n) for (a, b, p, n) in granted if a == src and b == dst}
        extra = list(ADMIN_PORTS)
        for proto, port in sorted(mine):
            extra += [(proto, port + 1), ("udp" if proto == "tcp" else "tcp", port)]
        for proto, port in extra:
            if (proto, port) not in mine and 0 < port < 65536:
                add("port", src, dst, proto, port, f"{proto}/{port}", None)
    return rows


def summary(rows: list[Probe]) -> dict[str, dict[str, int]]:
    """category -> {'pass': n, 'fail': n} expected counts."""
    out: dict[str, dict[str, int]] = {c: {"pass": 0, "fail": 0} for c in CATEGORIES}
    for r in rows:
        out[r.category][r.expect] += 1
    return out
