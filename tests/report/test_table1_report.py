"""The fault table's failover and congestion cells, and Table 1 beside the paper's: HTML, JSON and the CLI."""
from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from testbed.checks.result import CheckResult
from testbed.checks.table1 import compare
from testbed.report.model import RunReport
from testbed.report.page import write_html
from testbed.report.writers import write_json


def _drills() -> list[CheckResult]:
    arm = {"visits_per_day": 50, "clinic_day_s": 25200.0, "at_s": 1.0, "affected": [], "control": [],
           "outage_s_max": 5.9, "recovery_s_max": 0.3, "lost": 60}
    cloud = CheckResult("fault", "desktop-host-lost: node-down vdi-01", "pass", "moved", arm | {
        "desktop_arm": "cloud", "duration_s": 10.0,
        "desktop": {"sessions": [{"src": "dr-tablet-01"}, {"src": "dr-tablet-20"}], "moved_to": ["vdi-04"],
                    "failover_s_max": 1.7, "slo_back_s_max": 2.25, "inputs_lost": 23, "sessions_lost": 0}})
    trad = CheckResult("fault", "clinic-pc-failure: node-down dr-tablet-21", "pass", "held", arm | {
        "desktop_arm": "traditional", "repair_s": 14400.0, "duration_s": 6.0})
    cross = CheckResult("fault", "imaging-cross-traffic: congestion", "pass", "metered", {
        "at_s": 12.0, "duration_s": 4.0, "affected": [], "control": [], "outage_s_max": None, "recovery_s_max": None,
        "cross": {"received_bps": 58.2e6}, "cross_slice": "imaging", "flows": [{}, {}], "rtt_p95_added_ms_max": 3.4})
    drills = [cloud, trad, cross]
    return drills + compare(drills)


def test_html_shows_failover_cross_traffic_and_table1_beside_the_paper(rep: RunReport, tmp_path: Path) -> None:
    rep.checks += _drills()
    write_html(rep, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "2 moved to vdi-04: back 1.7 s, within SLO 2.25 s after the kill; 23 inputs lost" in html
    assert "58.2 Mbit/s imaging beside 2 flows" in html
    assert "the paper&#39;s Table 1 beside this run (pass)" in html or "the paper's Table 1 beside this run (pass)" in html
    assert "4 h (repair parameter)" in html and "2.25 s (measured" in html
    assert "<td>about 15</td><td>14.286</td>" in html and "<td>about 4</td><td>0.002</td>" in html


def test_json_keeps_the_arms_and_the_cli_prints_them(rep: RunReport, tmp_path: Path) -> None:
    from testbed.cli import render

    rep.checks += _drills()
    write_json(rep, tmp_path / "r.json")
    [t1] = [c for c in json.loads((tmp_path / "r.json").read_text())["checks"] if c["kind"] == "table1"]
    assert t1["metrics"]["arms"]["cloud"]["recovery_s"] == 2.25
    assert t1["metrics"]["arms"]["traditional"]["queued"] == {"arrivals": 28.571, "mean_queue": 14.286}
    console = Console(record=True, width=160)
    console.print(render.table1_table(rep))
    text = console.export_text()
    assert "PASS" in text and "about 15" in text and "14.286 / 28.571" in text and "2.25 s" in text
    assert render.table1_table(RunReport("x.yaml", "x", "0000")) is None
