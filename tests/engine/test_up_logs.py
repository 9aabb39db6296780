"""A failed `testbed up -d` keeps its build log in the state directory; `testbed clean` removes it once
that `up -d` has exited (no root: a private state directory and the CLI in-process)."""
from __future__ import annotations

import os
import subprocess

from click.testing import CliRunner

from testbed.cli.main import cli
from testbed.engine.rundir import stale_up_logs, up_log


def test_clean_removes_only_logs_of_exited_up_calls(state_dir, monkeypatch):
    # only the state directory is looked at: no OVS, Docker or /proc scan of the machine
    monkeypatch.setattr("testbed.engine.ownership.stray_bridges", lambda known: [])
    monkeypatch.setattr("testbed.engine.ownership.stray_helpers", lambda: [])
    monkeypatch.setattr("testbed.engine.runtimes.all_runtimes", lambda: [])
    state_dir.mkdir(parents=True)
    p = subprocess.Popen(["true"])
    p.wait()
    dead, mine = up_log(p.pid), up_log(os.getpid())
    for f in (dead, mine):
        f.write_text("building…\n")
    (state_dir / "notes.log").write_text("not ours\n")
    assert stale_up_logs() == [dead]
    r = CliRunner().invoke(cli, ["clean"])
    assert r.exit_code == 0, r.output
    assert not dead.exists() and mine.exists() and (state_dir / "notes.log").exists()
