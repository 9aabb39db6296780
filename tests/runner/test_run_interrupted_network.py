"""`testbed run` on a real network, stopped by SIGINT (Ctrl-C) or SIGTERM while a 40 s ping runs.

It must stop within seconds (the ping in the node ended, then teardown), write the JSON/JUnit/HTML
reports with what was measured until then, say it was interrupted, exit 130 / 143, and leave
nothing behind. Before the fix: SIGINT waited for the whole ping (39.6 s in the tester's run),
printed "Aborted!", exited 1 and wrote no report; SIGTERM waited as long and exited 1.

Takes the machine's network lock (TESTBED_NET_LOCK, as tests/robustness does) around each run;
about 10 s per signal.
"""
from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from testbed.engine.procs import pids_in_netns
from testbed.engine.rundir import all_runs

from tests.helpers import REPO, TESTBED, cli, leftovers
from tests.robustness.netlock import net_lock

pytestmark = pytest.mark.integration

TOPO = """\
name: interrupted
defaults:
  addressing: {pool: 10.79.0.0/24}
nodes:
  - {name: sw, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
links:
  - {endpoints: [a, sw]}
  - {endpoints: [b, sw]}
workloads:
  - {name: long-ping, type: ping, from: [a], to: b, duration: 40s, interval: 100ms,
     slo: {latency_p95: 50ms, loss_max: 1%}}
"""
PING_FOR_S = 3.0  # how long the ping runs before the signal


def _ping_running(proc: subprocess.Popen, timeout: float = 60) -> str:
    """Wait until the run owned by `proc` has its workload's ping running inside node a; its run id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        for m in all_runs():
            if m.supervisor_pid != proc.pid or "a" not in m.nodes or not m.nodes["a"].netns:
                continue
            for pid in pids_in_netns({m.nodes["a"].netns}):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if argv and argv[0] == b"ping" and b"400" in argv:  # the workload's, not the warm-up's -c1
                    return m.run_id
        time.sleep(0.1)
    raise AssertionError("the workload's ping did not start in time")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_workloads_stops_the_run_with_its_reports(network, state_dir, tmp_path, sig, code):
    topo = tmp_path / "interrupted.yaml"
    topo.write_text(TOPO)
    out = tmp_path / "reports"
    name = signal.Signals(sig).name
    with net_lock():
        proc = subprocess.Popen([*TESTBED, "run", str(topo), "--report-dir", str(out)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            rid = _ping_running(proc)
            time.sleep(PING_FOR_S)
            t0 = time.monotonic()
            proc.send_signal(sig)
            output, _ = proc.communicate(timeout=60)
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == code, output
        assert took < 8, f"{took:.1f} s from {name} to exit"
        assert leftovers(rid, state_dir) == []
        assert "nothing to clean" in cli("clean", "--dry-run").stdout
    assert "Aborted!" not in output and f"interrupted by {name} during workloads" in output, output
    rep = json.loads((out / "report.json").read_text())
    assert rep["verdict"] == "FAIL" and rep["error"] == f"interrupted by {name} during workloads"
    assert rep["run_id"] == rid
    checks = {c["name"]: c for c in rep["checks"]}
    assert checks["a -> b"]["status"] == "pass"  # the stages before still count
    assert checks["long-ping"]["status"] == "skip" and f"interrupted by {name} after" in checks["long-ping"]["detail"]
    [m] = rep["measurements"]
    # what was measured until the signal: about 10 replies a second, not the 400 a whole run sends
    assert m["workload"] == "long-ping" and 10 <= m["received"] <= 150
    assert len(m["samples"]["latency_ms"]) == m["received"]
    assert f'message="interrupted by {name} during workloads"' in (out / "junit.xml").read_text()
    assert "interrupted by" in (out / "report.html").read_text()
