"""The Table 1 comparison and the congestion verdict, without root (testbed.checks.table1, .congestion)."""
from __future__ import annotations

from testbed.checks.congestion import flow_effect, judge
from testbed.checks.result import CheckResult
from testbed.checks.table1 import PAPER, compare, queued
from testbed.topology.model import Topology


def test_queue_formula_reproduces_the_papers_figures():
    """50 visits per 7-hour day: 4 h -> 28.6 arrive, 14.3 on average (paper: about 15);
    30 min -> 3.6 arrive (paper: about 4), 1.8 on average."""
    day = 7 * 3600.0
    four_h, half_h = queued(4 * 3600, 50, day), queued(1800, 50, day)
    assert four_h == {"arrivals": 28.571, "mean_queue": 14.286}
    assert half_h == {"arrivals": 3.571, "mean_queue": 1.786}
    assert round(four_h["mean_queue"]) + 1 == PAPER["traditional"]["queued"]  # the paper rounds 14.3 up to 15
    assert round(half_h["arrivals"]) == PAPER["cloud"]["queued"]  # and counts 3.6 arrivals as 4


def _arm(arm: str, status: str = "pass", **m) -> CheckResult:
    base = {"desktop_arm": arm, "visits_per_day": 50, "clinic_day_s": 25200.0, "duration_s": 6.0}
    return CheckResult("fault", f"{arm}-drill", status, "detail", base | m)


def test_both_arms_side_by_side_with_the_papers():
    [r] = compare([_arm("traditional", repair_s=14400.0, outage_s_max=5.9),
                   _arm("cloud", desktop={"slo_back_s_max": 2.5})])
    assert r.kind == "table1" and r.status == "pass", r.detail
    trad, cloud = r.metrics["arms"]["traditional"], r.metrics["arms"]["cloud"]
    assert trad["recovery_s"] == 14400.0 and trad["queued"]["mean_queue"] == 14.286 and trad["paper_queued"] == 15
    assert cloud["recovery_s"] == 2.5 and cloud["queued"]["arrivals"] == 0.005 and cloud["paper_recovery_s"] == 1800
    assert "4 h" in r.detail and "2.5 s" in r.detail and "about 15" in r.detail


def test_a_workstation_that_came_back_unrepaired_or_a_cloud_arm_without_failover_fails():
    [r] = compare([_arm("traditional", repair_s=14400.0, outage_s_max=1.0),
                   _arm("cloud", desktop={"sessions": [{}], "slo_back_s_max": None})])
    assert r.status == "fail"
    assert "came back unrepaired" in r.detail and "no desktop session came back" in r.detail
    [r] = compare([_arm("cloud")])  # the lost host had no sessions to move: nothing was measured
    assert r.status == "fail" and "no desktop session ran on the lost host" in r.detail
    assert compare([CheckResult("fault", "plain", "pass", "", {"type": "link-down"})]) == []


def test_congestion_judges_other_slices_only_against_their_budgets():
    topo = Topology.model_validate({"name": "t", "nodes": [{"name": "h", "kind": "host"}], "slices": [
        {"name": "clinical", "fiveqi": 7, "latency_budget": "20ms"}, {"name": "imaging", "fiveqi": 8}]})
    calm = [(100 + i / 10, 5.0) for i in range(20)]
    busy = [(102 + i / 10, 30.0 if i % 2 else 10.0) for i in range(30)]
    eff = flow_effect(calm + busy, t_inject=102.0, t_restore=105.0)
    assert eff["rtt_p95_before_ms"] == 5.0 and eff["rtt_p95_during_ms"] == 30.0 and eff["lost"] == 0
    rows = [{"src": "a", "dst": "emr", "slice": "clinical", **eff}, {"src": "b", "dst": "pacs", "slice": "imaging", **eff}]
    bad, m = judge(rows, topo, "imaging", sender="c", max_loss=0.05)
    assert m["other_slice_flows"] == 1 and m["rtt_p95_added_ms_max"] == 25.0
    assert bad == []  # 30 ms is within twice clinical's 20 ms one-way budget; imaging's own flow is not judged
    worse = [dict(rows[0], rtt_p95_during_ms=55.0, lost=5)]
    bad, _ = judge(worse, topo, "imaging", sender="c", max_loss=0.05)
    assert len(bad) == 2 and "55.0 ms > 40 ms" in bad[1] and "lost 5/" in bad[0]


def test_congestion_watches_the_flows_beside_the_cross_traffic_first(reference):
    """The reference's cross-traffic leaves dr-tablet-02 through the branch-east cell and uplink: the flows of
    its neighbours there come first, the sender's own (behind its own load) last."""
    from types import SimpleNamespace

    from testbed.checks.faults import affected_pairs
    from testbed.openflow.layout import make_layout
    from testbed.ran.network import prepare, run_policy
    from testbed.topology.model import Fault

    topo, plan = prepare(reference, "ab12")
    tb = SimpleNamespace(topo=topo, ran=plan, layout=make_layout(topo, "ab12"))
    f = Fault(name="x", type="congestion", src="dr-tablet-02", dst="pacs", rate=60_000_000)
    hit, spared = affected_pairs(tb, f, run_policy(topo, plan).pairs())
    assert hit[0][0] in {"nurse-cart-02", "ward-term-02"}, hit[:3]
    own = [i for i, (s, _) in enumerate(hit) if s == "dr-tablet-02"]  # the sender's own: behind its load, last
    assert own and min(own) > max(i for i, (s, _) in enumerate(hit) if s != "dr-tablet-02")
    assert ("kiosk-03", "his") in spared or any(s == "kiosk-03" for s, _ in spared)  # a county kiosk: elsewhere


def test_drills_exclude_only_the_flows_another_drill_disturbs_while_they_measure():
    """A congestion drill over before another strikes leaves that one's controls alone; overlapping, it does not."""
    from testbed.checks.faults import _overlap
    from testbed.topology.model import Fault

    flood = Fault(name="c", type="congestion", src="a", dst="b", rate=1_000_000, at=0, duration=3000)
    cut = Fault(name="d", type="node-down", target="x", at=5000, duration=4000)
    assert not _overlap(cut, flood) and _overlap(flood, flood.model_copy(update={"name": "e"}))
    assert _overlap(cut, flood.model_copy(update={"at": 12000}))  # during the cut's recovery window
    assert _overlap(flood, cut.model_copy(update={"at": 1000}))  # a cut flow may stay down until its window ends


def test_the_readmes_faults_block_is_the_reference_s_and_loads():
    """The README's `faults:` example, as written: every entry is one of the reference topology's drills."""
    from pathlib import Path

    from ruamel.yaml import YAML

    from testbed.runner import load

    repo = Path(__file__).resolve().parents[2]
    text = (repo / "README.md").read_text().split("## Fault drills", 1)[1]
    block = text.split("    faults:\n", 1)[1].split("\n\n", 1)[0]
    entries = YAML(typ="safe").load("\n".join(line[4:] for line in block.splitlines()))
    reference = load(repo / "topologies" / "xiangtan-alliance.yaml")
    declared = {f.name: f.model_dump(by_alias=True, exclude_defaults=True) for f in reference.faults}
    assert len(entries) >= 5 and {e["name"] for e in entries} <= set(declared)
    for e in entries:
        from testbed.topology.model import Fault

        assert Fault.model_validate(e).model_dump(by_alias=True, exclude_defaults=True) == declared[e["name"]]
