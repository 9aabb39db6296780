"""The isolation heat map, the slice overview, the charts and the topology description."""
from __future__ import annotations

import re

from testbed.report import plots
from testbed.report.model import RunReport
from testbed.report.network import describe
from testbed.report.views import heat_map, node_groups, slice_overview


def test_heat_map_counts_each_verdict_by_group(rep: RunReport) -> None:
    hm = heat_map(rep)
    assert hm.groups == ["clinical", "kiosk", "server"]  # slices in file order, then kinds
    assert hm.cell("clinical", "server") == {"pass": 2, "LEAK": 0, "FALSE BLOCK": 1}  # incl. the forbidden port
    assert hm.cell("kiosk", "server") == {"pass": 1, "LEAK": 1, "FALSE BLOCK": 0}
    assert hm.cell("kiosk", "clinical") == {"pass": 1, "LEAK": 0, "FALSE BLOCK": 0}
    assert hm.cell("server", "kiosk")["pass"] == 1 and hm.cell("clinical", "kiosk") == {}
    assert sum(sum(c.values()) for c in hm.cells.values()) == 7  # 'delivery control' has no pair: left out
    assert hm.unplaced == 0


def test_heat_map_groups_multi_slice_members_together(reference) -> None:
    rep = RunReport("x.yaml", reference.name, "0000", **describe(reference))
    groups = node_groups(rep)
    assert groups["dr-tablet-01"] == "clinical-desktop+imaging"
    assert groups["kiosk-01"] == "iot-kiosk" and groups["emr"] == "server"


def test_heat_map_needs_a_network_description(rep: RunReport) -> None:
    rep.network = {}
    assert heat_map(rep).cells == {}


def test_slice_overview(rep: RunReport) -> None:
    clinical, kiosk = slice_overview(rep)
    assert (clinical["name"], clinical["fiveqi"], clinical["pdb_ms"], clinical["latency_budget_ms"]) == \
        ("clinical", 7, 100, 100.0)
    assert (clinical["slo_pass"], clinical["slo_fail"], clinical["slo_skip"]) == (5, 1, 0)
    assert clinical["isolation"] == {"pass": 2, "LEAK": 0, "FALSE BLOCK": 1}
    assert kiosk["isolation"]["LEAK"] == 1 and kiosk["slo_skip"] == 1 and kiosk["members"] == ["kiosk-01"]


def test_describe_expands_members_and_applies_link_defaults(small) -> None:
    d = describe(small)
    assert d["slices"][0]["members"] == ["dr-tablet-01"]
    uplink = next(ln for ln in d["network"]["links"] if {ln["a"], ln["b"]} == {"clinic-sw", "core"})
    assert uplink["bw_bps"] == 100_000_000  # the clinic site's uplink setting, not written on the link
    assert d["network"]["workloads"][0]["slo"] == {"latency_p95": 50.0, "jitter": 10.0, "loss_max": 1.0}


def test_nice_ticks() -> None:
    assert plots.nice_ticks(0, 47) == [0, 10, 20, 30, 40, 50]
    assert plots.nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert plots.nice_ticks(0, 0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_cdf_is_a_step_line_to_one() -> None:
    pts = plots.cdf_points([3.0, 1.0, 2.0])
    assert pts[0] == (1.0, 0.0) and pts[-1] == (3.0, 1.0)
    assert [y for _, y in pts] == sorted(y for _, y in pts)


def _numbers(svg: str, attr: str) -> list[float]:
    return [float(v) for v in re.findall(rf'{attr}="([\d.]+)"', svg)]


def test_latency_chart_marks_the_slo_or_says_it_is_off_scale() -> None:
    near = plots.latency_cdf("t", {"a -> b": [10.0, 20.0, 30.0]}, {"SLO p95 50 ms": 50.0})
    assert near.startswith("<svg") and near.count("<polyline") == 1 and 'class="slo"' in near
    assert "off scale" not in near and "a -&gt; b" in near
    far = plots.latency_cdf("t", {"a -> b": [0.5, 0.7, 1.0]}, {"SLO p95 50 ms": 50.0})
    assert 'class="slo"' not in far and "SLO p95 50 ms (off scale)" in far


def test_throughput_chart_spaces_samples_by_interval() -> None:
    svg = plots.throughput_over_time("t", {"a -> b": [10e6, 20e6, 30e6, 40e6]}, {"a -> b": 0.5}, 25e6)
    assert "SLO min 25 Mbit/s" in svg and ">2<" in svg  # 4 samples 0.5 s apart end at 2 s
    assert plots.throughput_over_time("t", {"a -> b": []}, {}, None) == ""


def test_many_series_fold_the_legend() -> None:
    svg = plots.latency_cdf("t", {f"s{i} -> d": [1.0, 2.0] for i in range(12)}, {})
    assert svg.count("<polyline") == 12 and "+4 more" in svg
