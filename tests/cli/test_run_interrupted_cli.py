"""`testbed run` stopped by Ctrl-C or SIGTERM during the workloads (no root): prompt, the reports of what
ran are written, exit 130 / 143.

The network is replaced by a stand-in (what runner.run needs of a Testbed, with up/down recorded),
the workload by one that runs a real `sleep` for its 40 s, and reachability by a stub; everything
between the signal and the exit code is the real code. Before the fix: the command waited the whole
40 s, printed "Aborted!", exited 1 and wrote no report.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict

import testbed.cli.main as cli_main
from testbed import runner, workloads
from testbed.checks.result import CheckResult
from testbed.cli.main import cli
from testbed.events import Emitter
from testbed.workloads.base import LATENCY_MS, Measurement

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
  - {name: long-ping, type: sleeper, from: [a], to: b, duration: 40s, slo: {latency_p95: 5ms, loss_max: 1%}}
"""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sleeper:
    name, summary, Params, agent = "sleeper", "test", _Params, None

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def run(self, tb, w, params, emit):
        t0 = time.monotonic()
        proc = subprocess.Popen(["sleep", f"{w.duration / 1000:g}"])
        self.procs.append(proc)
        proc.wait()
        m = Measurement(w.name, self.name, w.src[0], w.dst, sent=400, received=12, seconds=time.monotonic() - t0)
        m.samples[LATENCY_MS] = [0.3] * 12
        return [m]

    def end_all(self, _tb=None):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()


class StandIn:
    """A Testbed without a network."""

    __test__ = False
    run_id = "c0de"

    def __init__(self, topo):
        self.topo, self.source = topo, "intr-cli.yaml"
        self.timings: dict[str, float] = {}
        self.measurements: list = []
        self.warnings: list[str] = []
        self.manifest = None
        self.ran = None
        self.emit = Emitter(None)
        self.downs = 0

    def __enter__(self):
        self.timings["up_s"] = 0.01
        return self

    def __exit__(self, *exc):
        self.down()

    def down(self):
        self.downs += 1


@pytest.fixture
def standin(monkeypatch, tmp_path):
    from testbed.runner import load

    monkeypatch.setenv("TESTBED_STATE_DIR", str(tmp_path / "state"))
    t = Sleeper()
    workloads.register(t)
    monkeypatch.setattr(runner, "end_node_programs", t.end_all, raising=False)  # (absent before the fix)
    monkeypatch.setattr(runner, "intended_pairs", lambda topo, ran: [("a", "b")])
    monkeypatch.setattr(runner, "check_reachability",
                        lambda tb, pairs: [CheckResult("reachability", f"{s} -> {d}", "pass") for s, d in pairs])
    built: list[StandIn] = []

    def build(topology, controller_app, on_event):
        built.append(StandIn(load(topology)))
        return built[0]

    monkeypatch.setattr(cli_main, "_build", build)
    path = tmp_path / "intr-cli.yaml"
    path.write_text(TOPO)
    yield path, built
    t.end_all()
    workloads.unregister("sleeper")


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
