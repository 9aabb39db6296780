"""One verification: the switches' tables and the run's wiring in, leaks and false blocks out, with its cost.

Pure (no switch access): the engine reads the tables (testbed.engine.flowtables),
checks.verify replays the findings on the wire. Tests feed it compiled plans.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from testbed.verify.compare import Comparison, compare
from testbed.verify.expected import expected, host_port
from testbed.verify.headers import HEADER, WIDTH, Space
from testbed.verify.network import Network, Port, Solution


@dataclass
class Proof:
    comparison: Comparison
    solution: Solution
    space: Space
    switches: int
    rules: int
    host_ports: int
    header_bits: int
    seconds: float
    bdd_nodes: int
    plan_hosts: dict = field(default_factory=dict)  # host -> {dpid, port, mac, ip}: who sits at each port

    def summary(self) -> dict:
        c = self.comparison
        return {"leaks": len(c.leaks), "false_blocks": len(c.false_blocks), "pairs": c.pairs,
                "pairs_with_traffic": c.pairs_with_traffic, "switches": self.switches, "rules": self.rules,
                "host_ports": self.host_ports, "header_bits": self.header_bits,
                "headers_per_pair": f"2^{self.header_bits}", "rounds": self.solution.rounds,
                "visits": self.solution.visits, "bdd_nodes": self.bdd_nodes, "seconds": round(self.seconds, 3),
                "loops": self.solution.loops}


def links_of(plan: dict) -> dict[Port, Port]:
    """Both directions of every switch-to-switch link of the run (the plan's trunks, by dpid)."""
    dpid = {name: dp for dp, name in plan.get("switch_names", {}).items()}
    out: dict[Port, Port] = {}
    for a, pa, b, pb in plan.get("trunks", []):
        out[(dpid[a], int(pa))] = (dpid[b], int(pb))
        out[(dpid[b], int(pb))] = (dpid[a], int(pa))
    return out


def prove(plan: dict, tables: dict[str, list[dict]], frag_mode: str | None = None) -> Proof:
    """Verify `tables` (dpid -> rules, as read from the switches) against the policy of `plan`."""
    t0 = time.monotonic()
    s = Space()
    edges = {host_port(h) for h in plan["hosts"].values()}
    net = Network(s, tables, links_of(plan), edges, frag_mode or plan.get("frag_mode", "nx-match"))
    sol = net.solve()
    cmp_ = compare(s, sol, expected(s, plan), plan["hosts"])
    return Proof(cmp_, sol, s, len(tables), sum(len(r) for r in tables.values()), len(edges),
                 sum(WIDTH[f] for f in HEADER), time.monotonic() - t0, len(s.bdd), plan["hosts"])
