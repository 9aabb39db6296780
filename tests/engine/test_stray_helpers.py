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


def test_helpers_of_a_run_are_found_by_its_directory_recorded_or_not(tmp_path):
    """teardown ends a run's controller and relays even when the run died before recording their PIDs."""
    from testbed.engine.ownership import helpers_of

    proc = tmp_path / "proc"
    proc.mkdir()
    mine, other = tmp_path / "state" / "ab12", tmp_path / "state" / "cd34"
    for d in (mine, other):
        (d / "links").mkdir(parents=True)
    py = "/venv/bin/python"
    _proc(proc, 20, [py, "-m", "testbed.engine.osken_main", "--port", "1"], {"TESTBED_PLAN": f"{mine}/plan.json"})
    _proc(proc, 21, [py, "-m", "testbed.impair.relay", "--control", f"{mine}/links/0.sock"])
    _proc(proc, 22, [py, "-m", "testbed.impair.relay", "--control", f"{other}/links/0.sock"])
    _proc(proc, 23, [py, "-m", "testbed.engine.osken_main"], {"TESTBED_PLAN": f"{other}/plan.json"})
    _proc(proc, 24, ["sleep", "100"], {"TESTBED_PLAN": f"{mine}/plan.json"})  # not a helper
    assert sorted(helpers_of(str(mine), str(proc))) == [20, 21]


def test_docker_runs_in_flight_are_found_by_container_name(tmp_path):
    """teardown waits for the `docker run` clients of its containers (a kill mid-start), no others."""
    from testbed.engine.docker_node import runs_in_flight

    proc = tmp_path / "proc"
    proc.mkdir()
    _proc(proc, 30, ["docker", "run", "-d", "--name", "tbab12-vdi-01", "img", "sleep", "infinity"])
    _proc(proc, 31, ["/usr/bin/docker", "run", "-d", "--name", "tbcd34-vdi-01", "img"])
    _proc(proc, 32, ["docker", "rm", "-f", "tbab12-vdi-01"])
    assert runs_in_flight(["tbab12-vdi-01", "tbab12-emr"], str(proc)) == [30]
    assert runs_in_flight(["tbcd34-vdi-01"], str(proc)) == [31]
