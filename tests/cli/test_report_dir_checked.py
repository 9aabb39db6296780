"""Where `testbed run` writes its reports is checked before anything is built (no root needed).

Before the fix, `--report-dir /proc/nope` was found out only by write_all after the whole run: a
traceback, and every result lost. Now it is a usage error (exit 2) naming the option and the reason,
and nothing is built (`_build` refuses here). As root, access(2) says /proc is writable: the check
has to try.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import testbed.cli.main as cli_main
from testbed.cli.main import cli
from testbed.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
MINIMAL = REPO / "topologies" / "minimal.yaml"


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTBED_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def no_build(monkeypatch):
    def refuse(*_a, **_kw):
        raise AssertionError("the command tried to build a testbed")
    monkeypatch.setattr(cli_main, "_build", refuse)


def _run(*args: str):
    t0 = time.monotonic()
    r = CliRunner().invoke(cli, list(args))
    return r, time.monotonic() - t0


@pytest.mark.parametrize("where", ["/proc/nope", "/proc/nope/deeper", "/sys/nope"])
def test_an_unwritable_report_dir_is_a_usage_error_before_building(no_build, where):
    r, took = _run("run", str(MINIMAL), "--report-dir", where)
    assert r.exit_code == 2, (r.output, r.exception)
    assert "--report-dir" in r.stderr and where in r.stderr and "cannot create anything in" in r.stderr, r.stderr
    assert "Traceback" not in r.output and took < 5
    assert not Path(where).exists()


def test_a_report_dir_under_a_file_is_a_usage_error(no_build, tmp_path):
    (tmp_path / "file").write_text("x")
    r, _ = _run("run", str(MINIMAL), "--report-dir", str(tmp_path / "file" / "reports"))
    assert r.exit_code == 2 and "--report-dir" in r.stderr and "is not a directory" in r.stderr, r.stderr


def test_the_default_report_place_is_checked_too(no_build, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("reports").write_text("not a directory")  # where reports go without --report-dir
    r, _ = _run("run", str(MINIMAL))
    assert r.exit_code == 2 and "reports" in r.stderr and "--report-dir" in r.stderr, r.stderr


def test_a_writable_report_dir_passes_and_the_check_leaves_nothing(no_build, tmp_path):
    out = tmp_path / "new" / "deeper"
    r, _ = _run("run", str(MINIMAL), "--report-dir", str(out))
    assert isinstance(r.exception, AssertionError) and "tried to build" in str(r.exception)  # got to the build
    assert not (tmp_path / "new").exists()  # made by the run's reports, not by the check
    assert not any(p.name.startswith(".testbed-write-check-") for p in tmp_path.rglob("*"))


def test_writable_dir_tries_rather_than_trusting_access():
    from testbed.cli.options import writable_dir

    with pytest.raises(UsageError, match=r"cannot write into /proc/nope: cannot create anything in /proc"):
        writable_dir(Path("/proc/nope"))


def test_writable_dir_refuses_a_report_file_it_could_not_overwrite(tmp_path):
    from testbed.cli.options import writable_dir

    (tmp_path / "report.json").mkdir()
    with pytest.raises(UsageError, match="report.json: it is a directory"):
        writable_dir(tmp_path, ("report.json",))
    assert writable_dir(tmp_path / "x", ("report.json",)) == tmp_path / "x"


def test_schema_output_in_proc_is_a_usage_error():
    """-o goes through options.writable(), which also tries now (as root it trusted access(2))."""
    r, _ = _run("schema", "-o", "/proc/nope.json")
    assert r.exit_code == 2 and "/proc/nope.json" in r.stderr, (r.output, r.exception)
