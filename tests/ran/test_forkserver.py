"""The 5G fork server (testbed.ran.forkserver): programs forked from one process that imported them once.

The protocol, exit codes, logs, environment and process titles run without root (a spec that
enters no namespace); entering another process's namespaces, PID namespace included, needs root
and runs where `unshare` works. The engine's use of it is covered by every 5G integration test
(tests/integration/test_ran_path.py and the reference run), whose gNBs and core it starts.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.ran.forkserver import EnterSpec, ForkServer

PROGRAM = '''
import json, os, sys
if __name__ == "__main__":  # preloaded by the server (imported), run by each fork (as __main__)
    print(json.dumps({"argv": sys.argv[1:], "env": os.environ.get("TB_PROBE"), "netns": os.readlink("/proc/self/ns/net"),
                      "pidns": os.readlink("/proc/self/ns/pid"), "pid": os.getpid()}), flush=True)
    raise SystemExit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
'''


@pytest.fixture
def program(tmp_path, monkeypatch):
    """A module `tbfs_probe` on the server's path that prints what it sees and exits with argv[1]."""
    (tmp_path / "tbfs_probe.py").write_text(PROGRAM)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[2])]))
    return tmp_path


def _wait_exit(p, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert p.poll() is not None, f"{p.id} did not end"
    return p.returncode


def _output(log: Path) -> dict:
    import json

    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("{")]
    assert lines, log.read_text()
    return json.loads(lines[-1])


def test_a_forked_program_runs_with_its_args_log_and_exit_code(program):
    fs = ForkServer(["json", "tbfs_probe"])
    try:
        assert fs.wait_ready() is None
        here = EnterSpec(os.getpid(), namespaces=())
        ok = fs.spawn("ok", "tbfs_probe", ["0", "--config", "x.json"], str(program / "ok.log"), here)
        bad = fs.spawn("bad", "tbfs_probe", ["3"], str(program / "bad.log"), here)
        assert ok.error is None and ok.pid and bad.pid and ok.pid != bad.pid
        assert (_wait_exit(ok), _wait_exit(bad)) == (0, 3)
        out = _output(program / "ok.log")
        assert out["argv"] == ["0", "--config", "x.json"] and out["pid"] == ok.pid
    finally:
        fs.close()
    assert fs.proc.returncode == 0


def test_a_program_that_crashes_or_does_not_exist_is_an_exit_code_with_its_traceback_in_the_log(program):
    fs = ForkServer([])
    try:
        here = EnterSpec(os.getpid(), namespaces=())
        missing = fs.spawn("missing", "no_such_module_tbfs", [], str(program / "m.log"), here)
        assert _wait_exit(missing) == 1
        assert "No module named no_such_module_tbfs" in (program / "m.log").read_text()
    finally:
        fs.close()


def test_the_environment_is_the_nodes_not_the_servers(program, monkeypatch):
    monkeypatch.setenv("TB_PROBE", "server")
    fs = ForkServer(["tbfs_probe"])
    try:
        env = tuple(f"{k}={v}" for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH")) + ("TB_PROBE=node",)
        kept = fs.spawn("kept", "tbfs_probe", [], str(program / "k.log"), EnterSpec(os.getpid(), namespaces=()))
        given = fs.spawn("given", "tbfs_probe", [], str(program / "g.log"),
                         EnterSpec(os.getpid(), namespaces=(), env=env))
        assert (_wait_exit(kept), _wait_exit(given)) == (0, 0)
        assert _output(program / "k.log")["env"] == "server" and _output(program / "g.log")["env"] == "node"
    finally:
        fs.close()


def test_a_bad_request_is_answered_and_the_server_goes_on(program):
    fs = ForkServer([])
    try:
        assert fs.proc.stdin is not None
        fs.proc.stdin.write(b'{"id": "x", "module": 3}\nnot json\n')
        fs.proc.stdin.flush()
        p = fs.spawn("after", "tbfs_probe", ["5"], str(program / "a.log"), EnterSpec(os.getpid(), namespaces=()))
        assert _wait_exit(p) == 5
    finally:
        fs.close()


def test_a_forked_program_shows_its_own_command_line(program):
    """ps, pgrep and the testbed's process scans read /proc/PID/cmdline: a forked gNB must not read as the server."""
    (program / "tbfs_sleep.py").write_text("import time\ntime.sleep(30)\n")
    fs = ForkServer([])
    try:
        p = fs.spawn("sleep", "tbfs_sleep", ["--config", "/run/x.json"], str(program / "s.log"),
                     EnterSpec(os.getpid(), namespaces=()))
        want = [sys.executable, "-m", "tbfs_sleep", "--config", "/run/x.json"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            argv = [a.decode() for a in Path(f"/proc/{p.pid}/cmdline").read_bytes().split(b"\0")[:-1]]
            if argv == want:
                break
            time.sleep(0.02)
        assert argv == want
        os.kill(p.pid, 15)
        assert _wait_exit(p) == -15
    finally:
        fs.close()


def _unshare_works() -> bool:
    return os.geteuid() == 0 and subprocess.run(["unshare", "-n", "-p", "-f", "true"],
                                                capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="entering namespaces needs root and unshare")
def test_a_program_enters_the_network_and_pid_namespaces_of_its_node(program):
    """As `nsenter -t PID -n --pid=...` does: the node's network namespace, and a PID inside its PID namespace."""
    node = subprocess.Popen(["unshare", "-n", "-p", "-f", "--mount-proc", "sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        inner = None
        while inner is None and time.monotonic() < deadline:  # the sleep is unshare's child
            kids = Path(f"/proc/{node.pid}/task/{node.pid}/children").read_text().split()
            inner = int(kids[0]) if kids else None
            time.sleep(0.02)
        assert inner, "unshare did not start its child"
        fs = ForkServer(["tbfs_probe"])
        try:
            p = fs.spawn("in", "tbfs_probe", [], str(program / "in.log"),
                         EnterSpec(inner, namespaces=("net",), pid_ns_of=inner))
            assert _wait_exit(p) == 0
        finally:
            fs.close()
        out = _output(program / "in.log")
        assert out["netns"] == os.readlink(f"/proc/{inner}/ns/net") != os.readlink("/proc/self/ns/net")
        assert out["pidns"] == os.readlink(f"/proc/{inner}/ns/pid") and out["pid"] != p.pid and out["pid"] < 100
    finally:
        node.kill()
        node.wait()
