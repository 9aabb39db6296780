"""Regression tests for what fuzzing found in `link set`, `node set` and `slice grant|revoke`
(tests/cli/test_fuzz_cli_args.py): each once crashed, hung, passed nonsense on, or looked for a
run before saying the arguments were wrong."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from testbed import units
from testbed.cli.main import cli
from testbed.engine import docker_node as dn
from testbed.engine.rundir import Manifest, process_start_time
from testbed.engine.slices import change_membership
from testbed.errors import TestbedError, UsageError

NO_RUN = "no testbed is running"


@pytest.fixture(autouse=True)
def empty_state(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTBED_STATE_DIR", str(tmp_path / "state"))


def run(*args: str):
    r = CliRunner().invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r


@pytest.mark.parametrize("value", ["9" * 400 + "g", "1e400", "9" * 400])
def test_node_memory_of_400_digits(value):
    """parse_size: int(float('inf')) raised OverflowError, a traceback."""
    r = run("node", "set", "vdi-01", f"memory={value}")
    assert r.exit_code == 2 and NO_RUN not in r.output, r.output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "0.001", "1e9"])
def test_node_cpus_must_be_a_cpu_count(value):
    """float() took nan and inf, and `docker update --cpus nan` was run."""
    with pytest.raises(UsageError, match="number of CPUs"):
        dn.parse_limits([f"cpus={value}"])
    r = run("node", "set", "vdi-01", f"cpus={value}")
    assert r.exit_code == 2 and "number of CPUs" in r.output and NO_RUN not in r.output


def test_node_limits_tolerate_case_and_spaces():
    assert dn.parse_limits([" CPUS = 1.5", "Memory=512m"]) == {"cpus": 1.5, "memory": 512 << 20}


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "1e400"])
def test_slice_timeout_must_be_finite_and_positive(value):
    """--timeout nan waited forever for a controller that never answered."""
    r = run("slice", "grant", "--timeout", value, "clinical", "dr-tablet-01")
    assert r.exit_code == 2 and "--timeout" in r.output and NO_RUN not in r.output, r.output


@pytest.mark.parametrize(("args", "says"), [
    (("link", "set", "dr-tablet-01:clinic-sw", "lose=1%"), "unknown impairment setting 'lose'"),
    (("link", "set", "dr-tablet-01:clinic-sw", "delay=" + "9" * 400 + "ms"), "finite"),
    (("link", "set", "dr-tablet-01:clinic-sw", "model=gilbert", "loss=100%"), "gilbert loss must be below 100%"),
    (("link", "set", "dr-tablet-01", "delay=1ms"), "expected NODE-A:NODE-B"),
    (("link", "set", "a:b", " "), "nothing to change"),
    (("node", "set", "vdi-01", "cpu=2"), "unknown setting 'cpu'"),
    (("slice", "grant", "Clinical", "dr-tablet-01"), "SLICE 'Clinical' is not a name"),
    (("slice", "revoke", "clinical", "../etc"), "MEMBER '../etc' is not a name"),
])
def test_bad_arguments_are_reported_before_looking_for_a_run(args, says):
    """These used to reach for a run first: with none running, the user heard only 'no testbed is running'."""
    r = run(*args)
    assert r.exit_code == 2 and says in r.output and NO_RUN not in r.output, r.output


def test_good_arguments_then_look_for_the_run():
    r = run("link", "set", "dr-tablet-01:clinic-sw", "delay=20ms", "loss=1%")
    assert r.exit_code == 2 and NO_RUN in r.output


@pytest.mark.parametrize("value", ["9" * 400 + "ms", float("nan"), float("inf"), 10**400])
def test_duration_parser_refuses_what_is_not_finite(value):
    with pytest.raises(ValueError, match="finite|too large"):
        units.parse_duration_ms(value)


@pytest.mark.parametrize("parse", [units.parse_rate, units.parse_percent, units.parse_duration_ms])
def test_unit_parsers_refuse_ints_beyond_a_float(parse):
    """float(10**400) raised OverflowError, which pydantic lets escape as a crash."""
    with pytest.raises(ValueError):
        parse(10**400)


def test_slice_change_without_a_plan_is_an_error_not_a_traceback(tmp_path, minimal_topology_path):
    """A run directory without plan.json (a build that stopped early) raised FileNotFoundError."""
    start = process_start_time(os.getpid())
    m = Manifest(run_id="beef", topology=str(minimal_topology_path), name="minimal", supervisor_pid=os.getpid(),
                 supervisor_start=start, state="up", pids={"controller": [os.getpid(), start]})
    m.save()
    with pytest.raises(TestbedError, match="no readable controller plan"):
        change_membership(m, "grant", "clinical", "dr-tablet-01", timeout=1)  # a UE given back its own slice
    assert not (m.dir / "plan.json").exists()
    assert json.loads((m.dir / "manifest.json").read_text())["run_id"] == "beef"


@pytest.mark.parametrize("argv", [["schema", "-o", "/nonexistent/dir/s.json"],
                                  ["graph", "topologies/minimal.yaml", "-o", "/nonexistent/dir/x.svg"]])
def test_an_output_file_in_a_missing_directory(argv):
    """`-o` into a directory that is not there: a FileNotFoundError traceback after the work, exit 1."""
    r = run(*argv)
    assert r.exit_code == 2 and "/nonexistent/dir does not" in " ".join(r.output.split()), r.output


def test_a_run_whose_owner_died_is_named_with_the_command_that_removes_it():
    """`testbed exec` after the owner of an `up -d` was killed said only 'no testbed is running (start one
    with testbed up FILE)', while `testbed status` showed the run, owner dead (a tester's finding)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start_time(p.pid)
    p.wait()  # its pid is gone: the run's owner is dead
    Manifest(run_id="dead", topology="topologies/minimal.yaml", name="minimal", supervisor_pid=p.pid,
             supervisor_start=start, state="up").save()
    r = run("exec", "emr", "--", "true")
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "run(s) dead lost their owner process" in text and "`testbed clean`" in text, text
