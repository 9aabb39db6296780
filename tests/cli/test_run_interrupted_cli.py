"""`testbed run` stopped by Ctrl-C or SIGTERM during the workloads (no root): prompt, the reports of what
ran are written, exit 130 / 143.

The network is replaced by a stand-in (what runner.run needs of a Testbed, with up/down recorded),
the workload by one that runs a real `sleep` for its 40 s, and reachability by a stub (the fakes of
tests/runner/test_run_interrupted.py); everything between the signal and the exit code is the real code. Before the fix: the command waited the whole
40 s, printed "Aborted!", exited 1 and wrote no report.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from click.testing import CliRunner

import testbed.cli.main as cli_main
from testbed import runner, workloads
from testbed.cli.main import cli

from tests.runner.test_run_interrupted import FakeTestbed, Prog, fake_reachability

TOPO = """\
name: intr-cli
nodes:
  - {name: sw, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
links:
  - {endpoints: [a, sw]}
  - {endpoints: [b, sw]}
workloads:
  - {name: long-ping, type: prog, from: [a], to: b, duration: 40s, slo: {latency_p95: 5ms, loss_max: 1%}}
"""


@pytest.fixture
def standin(monkeypatch, tmp_path):
    from testbed.runner import load

    monkeypatch.setenv("TESTBED_STATE_DIR", str(tmp_path / "state"))
    t = Prog()
    workloads.register(t)
    monkeypatch.setattr(runner, "end_node_programs", t.end_all, raising=False)  # (absent before the fix)
    fake_reachability(monkeypatch)
    built: list[FakeTestbed] = []

    def build(topology, controller_app, on_event):
        built.append(FakeTestbed(load(topology)))
        return built[0]

    monkeypatch.setattr(cli_main, "_build", build)
    path = tmp_path / "intr-cli.yaml"
    path.write_text(TOPO)
    yield path, built
    t.end_all()
    workloads.unregister("prog")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_run_interrupted_during_workloads_writes_its_reports_and_exits_128_plus_the_signal(standin, tmp_path,
                                                                                           sig, code):
    path, built = standin
    out = tmp_path / "reports"
    timer = threading.Timer(1.0, os.kill, (os.getpid(), sig))
    t0 = time.monotonic()
    timer.start()
    try:
        r = CliRunner().invoke(cli, ["run", "-q", "--no-isolation", str(path), "--report-dir", str(out)])
    finally:
        timer.cancel()
    took = time.monotonic() - t0
    assert r.exit_code == code, (r.output, r.exception)
    assert took < 5, f"{took:.1f} s after a signal at 1 s: waited for the 40 s workload"
    assert built[0].downs >= 1
    name = signal.Signals(sig).name
    assert f"interrupted by {name} during workloads" in r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["verdict"] == "FAIL" and rep["error"] == f"interrupted by {name} during workloads"
    checks = {c["name"]: c for c in rep["checks"]}
    assert checks["a -> b"]["status"] == "pass"
    assert checks["long-ping"]["status"] == "skip" and f"interrupted by {name}" in checks["long-ping"]["detail"]
    assert [m["workload"] for m in rep["measurements"]] == ["long-ping"]
    junit = (out / "junit.xml").read_text()
    assert f'message="interrupted by {name} during workloads"' in junit
    assert (out / "report.html").is_file()
