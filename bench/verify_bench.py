"""How `testbed verify`'s proof grows with the network (no root: compiled plans, no switches).

Generated alliances of about N nodes (a data centre with EMR, PACS, HIS and VDI
servers; sites with a switch, terminals and kiosks; two slices), their stateful
plans compiled exactly as a run's controller gets them, proved over every
ordered pair of host ports and every header. Baseline, measured in the same run:
the prober's packet matrix for the same policy (one frame per should-pass and
must-fail flow) pushed through the fake network of testbed.slicing.simulate,
i.e. sampling the same tables instead of proving them.
Prints one row per N, then one JSON line.
`python -m bench.verify_bench [--sizes 100,1000]`
"""
from __future__ import annotations

import argparse
import json
import resource
import time


def alliance_yaml(n: int) -> str:
    """About n nodes: 5 in the data centre, aggregation switches of up to 20 sites each, and sites of
    1 switch + 8 terminals + 1 kiosk (a switch has at most 99 ports)."""
    sites = max(1, (n - 6) // 10)
    aggs = (sites + 19) // 20
    lines = [f"name: verify-{n}", "defaults: {addressing: {pool: 10.96.0.0/16}}", "nodes:",
             "  - {name: core, kind: switch}", "  - {name: emr, kind: server, services: [emr]}",
             "  - {name: pacs, kind: server, services: [pacs]}", "  - {name: his, kind: server, services: [his]}",
             "  - {name: vdi, kind: server, services: [vdi]}"]
    links = ["  - {endpoints: [emr, core]}", "  - {endpoints: [pacs, core]}", "  - {endpoints: [his, core]}",
             "  - {endpoints: [vdi, core]}"]
    clinical, kiosks = [], []
    for a in range(aggs):
        lines.append(f"  - {{name: agg{a}, kind: switch}}")
        links.append(f"  - {{endpoints: [agg{a}, core]}}")
    for s in range(sites):
        lines.append(f"  - {{name: sw{s}, kind: switch}}")
        links.append(f"  - {{endpoints: [sw{s}, agg{s // 20}]}}")
        for t in range(8):
            lines.append(f"  - {{name: t{s}-{t}, kind: host}}")
            links.append(f"  - {{endpoints: [t{s}-{t}, sw{s}]}}")
            clinical.append(f"t{s}-{t}")
        lines.append(f"  - {{name: k{s}, kind: host}}")
        links.append(f"  - {{endpoints: [k{s}, sw{s}]}}")
        kiosks.append(f"k{s}")
    return "\n".join(lines + ["links:"] + links + [
        "slices:",
        f"  - {{name: clinical, sst: 1, fiveqi: 7, members: [{', '.join(clinical)}], services: [emr, pacs, vdi]}}",
        f"  - {{name: kiosk, sst: 3, fiveqi: 9, members: [{', '.join(kiosks)}], services: [his]}}"]) + "\n"


def row(n: int) -> dict:
    from testbed.openflow.layout import make_layout
    from testbed.probe.matrix import build_matrix
    from testbed.slicing.plan import controller_plan
    from testbed.slicing.policy import compile_policy
    from testbed.slicing.simulate import FakeNetwork
    from testbed.topology.loader import parse_text
    from testbed.verify.prove import prove

    topo = parse_text(alliance_yaml(n), f"verify-{n}.yaml")
    lay = make_layout(topo, "be0c")
    plan = controller_plan(topo, lay)
    t0 = time.perf_counter()
    proof = prove(plan, plan["switches"])
    verify_s = time.perf_counter() - t0
    # baseline: the packet matrix, one frame per row, through the same rules (fake switches)
    wiring = lay.wiring()
    rows = build_matrix(topo, compile_policy(topo))
    ips, macs = {h: str(i.ip) for h, i in lay.ips.items()}, lay.macs
    t1 = time.perf_counter()
    net = FakeNetwork(plan, wiring)
    proto = {"tcp": 6, "udp": 17, "icmp": 1}
    for r in rows:
        frame = {"eth_src": macs[r.src], "eth_dst": macs[r.dst], "eth_type": 0x0800, "ipv4_src": ips[r.src],
                 "ipv4_dst": ips[r.dst], "ip_proto": proto.get(r.proto, 6), "tcp_src": 40000, "tcp_dst": r.port or 0,
                 "udp_src": 40000, "udp_dst": r.port or 0, "tcp_flags": 0x002, "icmpv4_type": 8}
        net.send(r.src, frame)
    matrix_s = time.perf_counter() - t1
    s = proof.summary()
    return {"nodes": len(topo.nodes), "host_ports": s["host_ports"], "pairs": s["pairs"], "rules": s["rules"],
            "header_bits": s["header_bits"], "verify_s": round(verify_s, 2), "matrix_rows": len(rows),
            "matrix_sim_s": round(matrix_s, 2), "ratio": round(verify_s / matrix_s, 2) if matrix_s else None,
            "us_per_pair": round(1e6 * verify_s / max(1, s["pairs"]), 1), "bdd_nodes": s["bdd_nodes"],
            "leaks": s["leaks"], "false_blocks": s["false_blocks"],
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100,1000")
    a = ap.parse_args()
    print("## testbed verify: every pair, every header, vs the packet matrix sampled on the same tables (fake switches)")
    print(f"{'nodes':>6} {'ports':>6} {'pairs':>9} {'rules':>7} | {'verify':>8} {'matrix':>8} {'ratio':>6} "
          f"{'us/pair':>8} | findings", flush=True)
    out = []
    for n in [int(x) for x in a.sizes.split(",")]:
        r = row(n)
        out.append(r)
        print(f"{r['nodes']:>6} {r['host_ports']:>6} {r['pairs']:>9} {r['rules']:>7} | {r['verify_s']:>7.2f}s "
              f"{r['matrix_sim_s']:>7.2f}s {r['ratio']:>6} {r['us_per_pair']:>8} | "
              f"{r['leaks']} leaks, {r['false_blocks']} false blocks", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
