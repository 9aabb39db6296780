"""JSON (schema, round trip), JUnit (a testcase per SLO and per isolation row, measurements as
properties) and the per-slice table, from the hand-built sample report."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from testbed.cli import render
from testbed.errors import UsageError
from testbed.report.model import SCHEMA_VERSION, RunReport
from testbed.report.views import slo_rows
from testbed.report.writers import write_json, write_junit

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "report.schema.json").read_text())


def _validate(doc: dict) -> list[str]:
    v = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{list(e.absolute_path)}: {e.message}" for e in v.iter_errors(doc)]


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_json_report_validates_against_the_schema(rep: RunReport, tmp_path: Path) -> None:
    write_json(rep, tmp_path / "report.json")
    doc = json.loads((tmp_path / "report.json").read_text())
    assert _validate(doc) == []
    assert doc["schema_version"] == SCHEMA_VERSION and doc["verdict"] == "FAIL"
    assert {s["name"] for s in doc["slices"]} == {"clinical", "kiosk"}
    assert next(n for n in doc["network"]["nodes"] if n["name"] == "dr-tablet-01")["slices"] == ["clinical"]


def test_schema_rejects_what_it_documents_as_wrong(rep: RunReport) -> None:
    """The schema is not a tautology: a bad verdict or a half SLO verdict is caught."""
    doc = rep.to_dict()
    doc["verdict"] = "MAYBE"
    slo_check = next(c for c in doc["checks"] if "slo" in c["metrics"])
    del slo_check["metrics"]["limit"]
    iso = next(c for c in doc["checks"] if c["metrics"].get("expect"))
    iso["metrics"]["verdict"] = "leaky"
    errors = _validate(doc)
    assert any("verdict" in e and "MAYBE" in e for e in errors)
    assert len(errors) == 3, errors


def test_round_trip_keeps_everything(rep: RunReport) -> None:
    again = RunReport.from_dict(json.loads(json.dumps(rep.to_dict())))
    assert again.to_dict() == json.loads(json.dumps(rep.to_dict()))


def test_version_1_report_loads_and_upgrades(rep: RunReport) -> None:
    old = rep.to_dict()
    for key in ("schema_version", "network", "slices"):
        del old[key]
    loaded = RunReport.from_dict(old)
    assert loaded.network == {} and loaded.slices == [] and len(loaded.checks) == len(rep.checks)
    assert _validate(loaded.to_dict()) == []


def test_newer_or_foreign_json_is_refused(rep: RunReport) -> None:
    with pytest.raises(UsageError, match="newer"):
        RunReport.from_dict(rep.to_dict() | {"schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(UsageError, match="not a testbed report"):
        RunReport.from_dict({"checks": []})


def _junit(rep: RunReport, tmp_path: Path) -> ET.Element:
    write_junit(rep, tmp_path / "junit.xml")
    return ET.parse(tmp_path / "junit.xml").getroot()


def _props(case: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.findall("properties/property")}


def test_junit_one_testcase_per_slo_with_measurements_as_properties(rep: RunReport, tmp_path: Path) -> None:
    root = _junit(rep, tmp_path)
    suite = root.find("testsuite[@name='workload']")
    slo_checks = [c for c in rep.checks if c.kind == "workload"]
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c.name for c in slo_checks]
    p95 = next(c for c in cases if c.get("name").endswith("latency_p95"))
    props = _props(p95)
    assert props["slo"] == "latency_p95" and props["limit"] == "50" and props["unit"] == "ms"
    assert props["slice"] == "clinical" and float(props["measured"]) > 0
    assert p95.get("classname") == "minimal.workload.clinical"
    failing = next(c for c in cases if c.get("name").endswith("throughput_min"))
    assert failing.find("failure") is not None and "Mbit/s" in failing.find("failure").get("message")
    assert suite.get("failures") == "1" and suite.get("skipped") == "1" and suite.get("tests") == str(len(cases))


def test_junit_one_testcase_per_isolation_row_with_its_verdict(rep: RunReport, tmp_path: Path) -> None:
    root = _junit(rep, tmp_path)
    cases = root.findall("testsuite[@name='isolation']/testcase")
    assert len(cases) == sum(c.kind == "isolation" for c in rep.checks)
    leak = next(c for c in cases if c.get("name").startswith("kiosk-01 -> pacs"))
    assert _props(leak)["verdict"] == "LEAK" and _props(leak)["captured_at"] == '["pacs"]'
    assert leak.find("failure").get("type") == "LEAK"
    assert root.get("failures") == "3" and root.get("tests") == str(len(rep.checks))
    budget = root.find("testsuite[@name='slice']/testcase")
    assert budget.get("classname") == "minimal.slice.clinical" and _props(budget)["measured"] == "21.45"
    suite_props = _props(root.find("testsuite[@name='isolation']"))
    assert suite_props["run_id"] == "a1b2" and suite_props["datapath"] == "netdev"


def test_junit_run_error_is_an_error_case(rep: RunReport, tmp_path: Path) -> None:
    rep.checks, rep.error = [], "building failed: no OVS"
    root = _junit(rep, tmp_path)
    case = root.find("testsuite[@name='run']/testcase")
    assert case.find("error").get("message") == "building failed: no OVS" and root.get("errors") == "1"


def test_slice_rows_group_slo_verdicts_by_slice(rep: RunReport) -> None:
    rows = slo_rows(rep)
    assert [r.slice for r in rows] == ["clinical"] * 6 + ["kiosk"]
    budget = rows[5]
    assert (budget.workload, budget.slo, budget.measured, budget.margin) == \
        ("(whole slice)", "latency budget ≤ 100.00 ms", "21.45 ms", "78.55 ms")
    p95 = next(r for r in rows if r.slo.startswith("latency p95"))
    assert (p95.workload, p95.path, p95.slo, p95.status) == ("tablet-emr-rtt", "dr-tablet-01 -> emr",
                                                            "latency p95 ≤ 50.00 ms", "pass")
    thr = next(r for r in rows if r.slo.startswith("throughput"))
    assert thr.slo == "throughput ≥ 50.00 Mbit/s" and thr.measured.endswith("Mbit/s") and thr.status == "fail"
    assert thr.margin.startswith("-")
    skipped = rows[-1]
    assert (skipped.workload, skipped.status, skipped.slo) == ("kiosk-payments", "skip", "not run")


def test_terminal_slice_table(rep: RunReport) -> None:
    console = Console(width=160, record=True)
    console.print(render.slice_table(rep))
    text = console.export_text()
    assert "SLO verdicts per slice" in text
    line = next(ln for ln in text.splitlines() if "throughput" in ln)
    assert "clinical" not in line and "study-transfer" in line and "FAIL" in line  # slice named once per group
    assert "kiosk-payments" in text and "SKIP" in text
    rep.checks = [c for c in rep.checks if c.kind not in ("workload", "slice")]
    assert render.slice_table(rep) is None


def test_html_of_a_run_that_never_got_to_its_checks(rep: RunReport, tmp_path: Path) -> None:
    from testbed.report.page import write_html

    rep.checks, rep.measurements, rep.platform, rep.error = [], [], {}, "building failed: no OVS"
    write_html(rep, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert 'class="banner FAIL"' in html and "building failed: no OVS" in html
    assert "No raw samples" in html and "No isolation matrix" in html
