"""up / exec / down, and teardown on every path: exception, SIGTERM, SIGKILL + clean."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from testbed import Testbed
from testbed.engine.rundir import all_runs

from tests.helpers import MINIMAL, REPO, TESTBED, cli, leftovers

SLEEP = f"300.{os.getpid()}"  # seconds: a background process in a node, found again by its command line


def _wait_up(proc: subprocess.Popen, timeout: float = 90) -> str:
    """Poll `testbed status --json` until the run owned by proc is up; return its run id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        for m in all_runs():
            if m.supervisor_pid == proc.pid and m.state == "up":
                return m.run_id
        time.sleep(0.2)
    raise AssertionError("testbed up did not come up in time")


def test_context_manager_up_exec_down(state_dir):
    with Testbed.from_file(MINIMAL) as tb:
        rid = tb.run_id
        out = tb.node("dr-tablet-01").cmd("ping -c2 -W2 emr")
        assert " 0% packet loss" in out, out
        # a node resolves the others by name and has its own address
        assert tb.node("emr").ip in tb.node("emr").cmd("ip -4 -o addr show")
        # a background process started in a node is removed at teardown
        # (a duration no other process on the machine has: `pgrep -f "sleep 300"` once found a shell's own)
        tb.node("pacs").popen(["sleep", SLEEP])
        # exec from another process, by node name, as a user would
        r = cli("exec", "--run", rid, "kiosk-01", "--", "ping", "-c1", "-W2", "emr")
        assert "1 received" in r.stdout
        # and the slice policy holds: the kiosk's slice does not include PACS
        r = cli("exec", "--run", rid, "kiosk-01", "--", "ping", "-c1", "-W1", "pacs", check=False)
        assert r.returncode != 0 and "0 received" in r.stdout
        st = json.loads(cli("status", "--json").stdout)
        assert [s["run_id"] for s in st] == [rid] and st[0]["live"] and st[0]["state"] == "up"
        live = leftovers(rid, state_dir)  # sanity: the helper does see a live run, controller included
        assert any(x.startswith("bridge ") for x in live) and any(x.startswith("process ") for x in live), live
        assert sum(x.startswith("controller ") for x in live) == 1, live
    assert leftovers(rid, state_dir) == []
    assert subprocess.run(["pgrep", "-f", f"sleep {SLEEP}"], capture_output=True).returncode != 0


def test_teardown_after_exception(state_dir):
    tb = Testbed.from_file(MINIMAL)
    with pytest.raises(RuntimeError, match="boom"):
        with tb:
            rid = tb.run_id
            raise RuntimeError("boom")
    assert leftovers(rid, state_dir) == []


def test_build_failure_tears_down(state_dir, tmp_path):
    # A controller app that does not exist: the build fails after nodes exist.
    tb = Testbed.from_file(MINIMAL, controller_app="no_such_module_xyz", ready_timeout=15)
    with pytest.raises(Exception):
        tb.up()
    assert tb.manifest is not None
    assert leftovers(tb.manifest.run_id, state_dir) == []


def test_sigterm_to_up_tears_down(state_dir):
    proc = subprocess.Popen([*TESTBED, "up", "--quiet", str(MINIMAL)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        rid = _wait_up(proc)
        assert leftovers(rid, state_dir)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert leftovers(rid, state_dir) == []


def test_down_from_another_shell(state_dir):
    proc = subprocess.Popen([*TESTBED, "up", "--quiet", str(MINIMAL)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        rid = _wait_up(proc)
        r = cli("down")
        assert rid in r.stdout
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert leftovers(rid, state_dir) == []


def test_clean_after_sigkill_leaves_live_runs_alone(state_dir):
    victim = subprocess.Popen([*TESTBED, "up", "--quiet", str(MINIMAL)], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    other = subprocess.Popen([*TESTBED, "up", "--quiet", str(MINIMAL)], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        rid = _wait_up(victim)
        other_rid = _wait_up(other)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        time.sleep(0.5)
        assert leftovers(rid, state_dir), "SIGKILL should leave something for clean to find"
        r = cli("clean")
        assert rid in r.stdout and other_rid not in r.stdout
        assert leftovers(rid, state_dir) == []
        # the live run is untouched and still forwards
        r = cli("exec", "--run", other_rid, "dr-tablet-01", "--", "ping", "-c1", "-W2", "emr")
        assert "1 received" in r.stdout
        assert "nothing to clean" in cli("clean").stdout
    finally:
        for p in (victim, other):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=60)
    assert leftovers(other_rid, state_dir) == []


def test_run_minimal_writes_reports(state_dir, tmp_path):
    out = tmp_path / "reports"
    r = cli("run", "--quiet", "--report-dir", str(out), str(MINIMAL))
    assert "PASS" in r.stdout
    rep = json.loads((out / "report.json").read_text())
    assert rep["verdict"] == "PASS"
    # 3 slice pairs, and the 5G path's own: 2 UEs -> their gNB, gNB -> core, core -> UPF, gNB <-> UPF
    assert rep["summary"]["reachability"]["pass"] == 3 + 6
    assert rep["platform"]["datapath"] in ("netdev", "system")
    assert (out / "junit.xml").read_text().startswith("<?xml")
    assert "PASS" in (out / "report.html").read_text()
    assert leftovers(rep["run_id"], state_dir) == []


def test_detached_up_leaves_nothing_in_the_state_directory(state_dir):
    """`up -d` logs into the run's directory once up, so `down` removes the log with the run."""
    r = cli("up", "-d", str(MINIMAL))
    rid = next(m.run_id for m in all_runs())
    assert f"{state_dir / rid / 'up.log'}" in r.stdout.replace("\n", "")
    cli("down")
    assert leftovers(rid, state_dir) == []
    assert list(state_dir.iterdir()) == []


def test_readme_5g_example_ran_status_and_a_session_interface(state_dir):
    """The README's 5G example, as written: up -d, ran status, a UE's uesimtun0, down."""
    import json
    import os

    cli("up", "-d", str(MINIMAL))
    rid = next(m.run_id for m in all_runs())
    try:
        st = cli("ran", "status", env={**os.environ, "COLUMNS": "200"})
        assert "2/2 UEs registered" in st.stdout.replace("\n", " ") and "uesimtun0" in st.stdout
        view = json.loads(cli("ran", "status", "--json").stdout)
        doc = next(u for u in view["ues"] if u["name"] == "dr-tablet-01")
        assert doc["state"] == "registered" and doc["sessions"][0]["state"] == "active"
        addr = cli("exec", "dr-tablet-01", "--", "ip", "-br", "addr", "show", "uesimtun0").stdout
        assert doc["sessions"][0]["address"] + "/32" in addr
    finally:
        cli("down")
    assert leftovers(rid, state_dir) == []


def test_readme_python_example_impairs_a_link_the_file_left_plain(state_dir):
    """The README's Python example, as written, then measured: the UE's access link (no impairment in the
    file, so full speed until now) gets a relay spliced in at its switch port on first use."""
    import re

    from testbed import Testbed

    def rtt(tb) -> float:
        out = tb.node("dr-tablet-01").cmd("ping -c3 -i 0.2 emr")
        return float(re.search(r"= [\d.]+/([\d.]+)/", out).group(1))

    with Testbed.from_file("topologies/minimal.yaml") as tb:
        rid = tb.run_id
        print(tb.node("dr-tablet-01").cmd("ping -c3 emr"))
        before = rtt(tb)
        tb.set_link("dr-tablet-01:clinic-sw", ["delay=20ms"])
        after = rtt(tb)
        assert before < 10 and 40 <= after < 60, (before, after)  # 20 ms each way
        assert tb.manifest.links["dr-tablet-01:clinic-sw"]["spliced"] is True
        tb.set_link("dr-tablet-01:clinic-sw", ["delay=0ms"])
        assert rtt(tb) < 10
    assert leftovers(rid, state_dir) == []


def test_link_set_from_another_shell_splices_and_down_removes_the_splice(state_dir):
    """`testbed link set` on a plain link of a detached run: the relay it splices in (interfaces, process)
    is recorded where the run's own `down` finds it."""
    cli("up", "-d", str(MINIMAL))
    rid = next(m.run_id for m in all_runs())
    try:
        out = cli("link", "set", "kiosk-01:clinic-sw", "delay=15ms").stdout
        assert "delay=15ms" in out
        rtt = cli("exec", "kiosk-01", "--", "ping", "-c2", "-i", "0.2", "emr").stdout
        assert "rtt" in rtt and float(rtt.split("=")[-1].split("/")[1]) >= 30, rtt
    finally:
        cli("down")
    assert leftovers(rid, state_dir) == []  # (its interfaces carry the run's prefix: leftovers() looks for them)
