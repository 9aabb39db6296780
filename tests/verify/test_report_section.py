"""The verify section of the reports: findings with their counterexample and replay, in JSON (schema)
and HTML, and the CLI's verdict line next to the probe's."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from testbed.checks.result import CheckResult
from testbed.cli.render import verify_line
from testbed.report.model import RunReport
from testbed.report.writers import write_all

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "report.schema.json").read_text())


def _report() -> RunReport:
    finding = {"kind": "leak", "src": "emr", "dst": "dr-tablet-01", "src_port": ["1", 1], "dst_port": ["2", 3],
               "header": {"ip_proto": 6}, "summary": "tcp 10.77.0.5:443 -> 10.77.0.1:1 [A]", "headers": "12",
               "needs_connection": False, "opener": None, "replay": "confirmed",
               "replay_detail": "sent from emr; arrived at dr-tablet-01"}
    rep = RunReport(topology="t.yaml", name="t", run_id="abcd")
    rep.verify = {"leaks": 1, "false_blocks": 0, "pairs": 20, "pairs_with_traffic": 6, "switches": 2, "rules": 40,
                  "host_ports": 5, "header_bits": 441, "headers_per_pair": "2^441", "rounds": 2, "visits": 9,
                  "bdd_nodes": 100, "seconds": 0.5, "loops": [], "replayed": 1, "confirmed": 1, "refuted": 0,
                  "replay_s": 1.2, "findings": [finding], "findings_listed": 1}
    rep.checks = [CheckResult("verify", "exhaustive isolation proof", "fail", "1 leak"),
                  CheckResult("isolation", "emr -> dr-tablet-01", "pass", "", {"verdict": "ok"})]
    return rep


def test_json_validates_and_html_lists_the_finding(tmp_path):
    written = write_all(_report(), tmp_path, ["json", "html"])
    doc = json.loads(Path(written["json"]).read_text())
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc)) == []
    assert doc["verify"]["findings"][0]["replay"] == "confirmed"
    html = Path(written["html"]).read_text()
    assert 'id="verify"' in html and "verified: 1 leaks, 0 false blocks" in html
    assert "tcp 10.77.0.5:443 -&gt; 10.77.0.1:1 [A]" in html and "confirmed" in html


def test_cli_line_puts_the_proof_next_to_the_probe():
    line = verify_line(_report())
    assert "verified: 1 leaks, 0 false blocks" in line and "1 replayed: 1 confirmed" in line
    assert "the packet probe: 0 leaks, 0 false blocks" in line
    assert verify_line(RunReport(topology="t.yaml", name="t", run_id="abcd")) is None
    proof_only = _report()
    proof_only.checks = proof_only.checks[:1]  # --isolation verify: no packet was sent
    assert verify_line(proof_only).endswith("the packet probe: not run")


def test_stage_times_follow_the_run_order_and_skip_what_did_not_run():
    from testbed.cli.render import stage_times

    t = {"down_s": 9.0, "up_s": 40.0, "verify_s": 10.5, "probe_s": 60.0, "checks_s": 150.0}
    assert stage_times(t) == [("up", 40.0), ("probe", 60.0), ("verify", 10.5), ("down", 9.0)]
