"""testbed clean finds controller and relay processes whose run directory is gone (a fake /proc, no root)."""
from __future__ import annotations

from testbed.engine.ownership import stray_helpers


def _proc(root, pid: int, argv: list[str], env: dict[str, str] | None = None) -> None:
    d = root / str(pid)
    d.mkdir()
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in (env or {}).items()))


def test_only_helpers_of_vanished_runs_are_strays(tmp_path):
    proc, live = tmp_path / "proc", tmp_path / "state" / "ab12"
    proc.mkdir()
    (live / "links").mkdir(parents=True)
    gone = tmp_path / "state" / "cd34"
    py = "/venv/bin/python"
    _proc(proc, 10, [py, "-m", "testbed.engine.osken_main", "--port", "1"], {"TESTBED_PLAN": f"{gone}/plan.json"})
    _proc(proc, 11, [py, "-m", "testbed.engine.osken_main", "--port", "2"], {"TESTBED_PLAN": f"{live}/plan.json"})
    _proc(proc, 12, [py, "-m", "testbed.impair.relay", "--control", f"{gone}/links/3.sock"])
    _proc(proc, 13, [py, "-m", "testbed.impair.relay", "--control", f"{live}/links/4.sock"])
    _proc(proc, 14, ["sleep", "100"], {"TESTBED_PLAN": f"{gone}/plan.json"})  # not a helper: never touched
    (proc / "self").mkdir()
    assert sorted(stray_helpers(str(proc))) == [(10, "controller", str(gone)), (12, "relay", str(gone))]
