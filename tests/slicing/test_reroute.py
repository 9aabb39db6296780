"""Forwarding recomputed around a failed trunk (testbed.slicing.reroute), on the plan alone."""
from __future__ import annotations

from testbed.openflow.layout import make_layout
from testbed.slicing.plan import controller_plan
from testbed.slicing.reroute import trunk_ends, without_ports
from testbed.topology.loader import parse_text

RING = """
name: ring
nodes:
  - {name: s1, kind: switch}
  - {name: s2, kind: switch}
  - {name: s3, kind: switch}
  - {name: emr, kind: server, services: [emr]}
  - {name: pc, kind: host}
links:
  - {endpoints: [emr, s1]}
  - {endpoints: [pc, s3]}
  - {endpoints: [s1, s3]}
  - {endpoints: [s1, s2]}
  - {endpoints: [s2, s3]}
slices:
  - {name: clinical, sst: 1, sd: "000001", fiveqi: 7, members: [pc], services: [emr]}
"""


def _plan():
    topo = parse_text(RING, "ring.yaml")
    lay = make_layout(topo, "ab12")
    return controller_plan(topo, lay), lay


def _to(plan, sw: str, mac: str) -> list:
    dp = {v: k for k, v in plan["switch_names"].items()}[sw]
    return [r["actions"] for r in plan["switches"][dp] if r.get("table") == 3 and r["match"] == {"eth_dst": mac}]


def test_a_cut_trunk_moves_forwarding_to_the_other_path_and_nothing_else():
    plan, lay = _plan()
    # s3's end of the direct s1-s3 link
    direct = [(t[2], t[3]) if t[2] == "s3" else (t[0], t[1]) for t in plan["trunks"] if {t[0], t[2]} == {"s1", "s3"}]
    assert len(direct) == 1 and direct[0] in trunk_ends(plan)
    emr = lay.macs["emr"]
    before = _to(plan, "s3", emr)
    after_plan = without_ports(plan, set(direct))
    after = _to(after_plan, "s3", emr)
    assert before != after and len(after) == 1  # s3 now sends towards s2
    # only table 3 changed: admission, tracking and marking are the same rules
    for dp, rules in plan["switches"].items():
        assert [r for r in rules if r.get("table") != 3] == [r for r in after_plan["switches"][dp]
                                                             if r.get("table") != 3]
    assert without_ports(plan, set()) is plan


def test_a_destination_no_path_reaches_loses_its_forwarding_rules():
    plan, lay = _plan()
    s3_ports = {(sw, p) for sw, p in trunk_ends(plan) if sw == "s3"}
    cut = without_ports(plan, s3_ports)  # s3 cut off from s1 and s2
    assert _to(cut, "s3", lay.macs["emr"]) == [] and _to(cut, "s3", lay.macs["pc"]) != []
