"""tests.helpers.leftovers must see a run's controller and relay processes, and only that run's.

Stand-ins with the argv and environment the testbed gives the real processes
(`python -m testbed.engine.osken_main` with TESTBED_PLAN=<state>/<run>/plan.json,
`python -m testbed.impair.relay --if-a tb<run>... --if-b ...`) are enough: the
helper finds processes by those alone. No root needed. (Run ids here are not hex, so
no real run can match them.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import _run_processes

SLEEP = "import sys, time; print('up', flush=True); time.sleep(60)"


@pytest.fixture
def spawn() -> Iterator:
    procs: list[subprocess.Popen] = []

    def start(*argv: str, env: dict[str, str] | None = None) -> int:
        # `python -c CODE ARGS...`: ARGS land in argv (and /proc/PID/cmdline) untouched
        p = subprocess.Popen([sys.executable, "-c", SLEEP, *argv], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, **(env or {})})
        procs.append(p)
        assert p.stdout.readline().strip() == "up"
        return p.pid

    yield start
    for p in procs:
        p.kill()
        p.wait(10)


def _pids(found: list[str]) -> set[int]:
    return {int(line.split()[1]) for line in found}


def test_controller_of_the_run_is_found_by_its_plan(spawn, tmp_path: Path) -> None:
    state = tmp_path / "state"
    ours = spawn("-m", "testbed.engine.osken_main", "--port", "6653", "controllers.slicing",
                 env={"TESTBED_PLAN": str(state / "qqa1" / "plan.json")})
    other = spawn("-m", "testbed.engine.osken_main", "--port", "6654", "controllers.slicing",
                  env={"TESTBED_PLAN": str(state / "qqb2" / "plan.json")})
    found = _run_processes("qqa1", state)
    assert _pids(found) == {ours} and found[0].startswith("controller ")
    assert other in _pids(_run_processes("qqb2", state))


def test_relay_of_the_run_is_found_by_its_interfaces(spawn, tmp_path: Path) -> None:
    ours = spawn("-m", "testbed.impair.relay", "--if-a", "tbqqa1r00a", "--if-b", "tbqqa1r00b", "--control", "x")
    spawn("-m", "testbed.impair.relay", "--if-a", "tbqqb2r00a", "--if-b", "tbqqb2r00b", "--control", "x")
    spawn("-m", "testbed.impair.relay", "--if-a", "eth0", "--if-b", "eth1", "--control", "tbqqa1")  # not its ifs
    found = _run_processes("qqa1", tmp_path)
    assert _pids(found) == {ours} and found[0].startswith("relay ")


def test_nothing_found_once_they_are_gone(spawn, tmp_path: Path) -> None:
    pid = spawn("-m", "testbed.impair.relay", "--if-a", "tbqqa1r01a", "--if-b", "tbqqa1r01b")
    assert _pids(_run_processes("qqa1", tmp_path)) == {pid}
    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while pid in _pids(_run_processes("qqa1", tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)  # a zombie keeps an empty cmdline until reaped; it must not count
    assert _run_processes("qqa1", tmp_path) == []
