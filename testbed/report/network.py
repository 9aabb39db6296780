"""The network a report is about, as plain data: sites, nodes, links, slices, workloads.

A report must be readable (and redrawable by `testbed report`) long after the
topology file changed or moved, so it carries what was built rather than a path
to the file. `testbed graph` draws from the same description, straight from a
loaded file, so the drawing in a report and the one from the CLI never differ.
Values are the effective ones (site and file defaults applied, members expanded).
"""
from __future__ import annotations

from typing import Any

from testbed import kinds
from testbed.topology.model import FIVEQI_PDB_MS, Slo, Topology
from testbed.topology.resolve import assign_addresses, expand_members, link_params


def describe(topo: Topology) -> dict[str, Any]:
    """{'network': {...}, 'slices': [...]}: the two RunReport fields, from a valid topology."""
    slices = [_slice(topo, s) for s in topo.slices]
    member_of: dict[str, list[str]] = {}
    for s in slices:
        for m in s["members"]:
            member_of.setdefault(m, []).append(s["name"])
    try:
        ips = {n: str(i.ip) for n, i in assign_addresses(topo).items()}
    except ValueError:  # an exhausted pool is validate()'s to report; the drawing goes without addresses
        ips = {}
    network = {
        "description": topo.description or "",
        "sites": [{"name": s.name, "type": s.type, "description": s.description or ""} for s in topo.sites],
        "nodes": [_node(n, ips.get(n.name), member_of.get(n.name, [])) for n in topo.nodes],
        "links": [_link(topo, ln) for ln in topo.links],
        "workloads": [_workload(w) for w in topo.workloads],
    }
    return {"network": network, "slices": slices}


def _node(n, ip: str | None, slices: list[str]) -> dict[str, Any]:
    return {"name": n.name, "kind": n.kind, "site": n.site, "switch": kinds.get(n.kind).switch, "ip": ip,
            "services": [f"{s.name} ({s.proto}/{s.port})" for s in n.services], "slices": slices}


def _link(topo: Topology, ln) -> dict[str, Any]:
    p = link_params(topo, ln)
    return {"a": ln.endpoints[0], "b": ln.endpoints[1], "bw_bps": p.bw, "delay_ms": p.delay,
            "jitter_ms": p.jitter, "loss_pct": p.loss, "mtu": p.mtu}


def _slice(topo: Topology, s) -> dict[str, Any]:
    return {"name": s.name, "sst": s.sst, "sd": s.sd, "fiveqi": s.fiveqi,
            "pdb_ms": FIVEQI_PDB_MS.get(s.fiveqi), "latency_budget_ms": s.latency_budget, "rate_bps": s.rate,
            "members": [n.name for n in expand_members(topo, s.members)], "member_refs": list(s.members),
            "services": list(s.services)}


def _workload(w) -> dict[str, Any]:
    slo = {f: getattr(w.slo, f) for f in Slo.model_fields if getattr(w.slo, f) is not None}
    return {"name": w.name, "type": w.type, "slice": w.slice, "from": list(w.src), "to": w.dst,
            "duration_ms": w.duration, "slo": slo}
