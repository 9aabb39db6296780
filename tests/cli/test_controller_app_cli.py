"""A bad controller app is a usage/input error (exit 2) before anything is built:
`controller.app` in the file through `testbed validate|run|probe`, `--controller-app` on the command line."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import testbed.engine.testbed as engine_testbed
from testbed.cli.main import cli

from tests.topology.test_controller_app import FLOW as TOPO  # controller.app on line 2


class Refused(Exception):
    pass


@pytest.fixture(autouse=True)
def no_build(tmp_path: Path, monkeypatch):
    """Own state dir; any attempt to build a network raises Refused."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("TESTBED_STATE_DIR", str(state))

    def refuse(*_a, **_kw):
        raise Refused("the command tried to build a testbed")
    monkeypatch.setattr(engine_testbed.Testbed, "__init__", refuse)  # what `_build` and `probe` construct


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize(("app", "fragment"), [("nosuch_module", "nosuch_module"),
                                               ("apps/missing.py", "missing.py")])
def test_validate_bad_app_exits_2(runner: CliRunner, write_yaml, app: str, fragment: str) -> None:
    path = write_yaml(TOPO % app)
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:2 controller.app:" in result.output
    assert fragment in result.output
    assert "✓" not in result.output


def test_validate_good_py_app(runner: CliRunner, write_yaml, tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "mine.py").write_text("")
    result = runner.invoke(cli, ["validate", str(write_yaml(TOPO % "apps/mine.py"))])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("verb", ["run", "probe", "up"])
def test_bad_app_in_file_fails_before_build(runner: CliRunner, write_yaml, verb: str) -> None:
    path = write_yaml(TOPO % "nosuch_module")
    result = runner.invoke(cli, [verb, str(path)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert not isinstance(result.exception, Refused)
    assert f"{path}:2 controller.app:" in result.output


@pytest.mark.parametrize("app", ["nosuch", "nosuch.pkg.app", "apps/missing.py"])
def test_probe_bad_controller_app_option(runner: CliRunner, write_yaml, app: str) -> None:
    path = write_yaml(TOPO % "auto")
    result = runner.invoke(cli, ["probe", str(path), "--controller-app", app])
    assert result.exit_code == 2, (result.output, result.exception)
    assert not isinstance(result.exception, Refused)
    assert "--controller-app" in result.output
    assert app.split("/")[-1].split(".")[0] in result.output


def test_probe_controller_app_py_is_relative_to_cwd(runner: CliRunner, write_yaml, tmp_path: Path,
                                                    monkeypatch) -> None:
    """A .py given on the command line is relative to the current directory (not the file's)."""
    path = write_yaml(TOPO % "auto")
    here = tmp_path / "here"
    here.mkdir()
    (here / "mine.py").write_text("")
    (tmp_path / "only_beside_file.py").write_text("")
    monkeypatch.chdir(here)
    ok = runner.invoke(cli, ["probe", str(path), "--controller-app", "mine.py"])
    assert isinstance(ok.exception, Refused), ok.output  # accepted: it got as far as building
    bad = runner.invoke(cli, ["probe", str(path), "--controller-app", "only_beside_file.py"])
    assert bad.exit_code == 2 and "--controller-app" in bad.output


@pytest.mark.parametrize("app", ["allow-all", "stateless", "slicing", "controllers.examples.ryu_l2_switch"])
def test_probe_good_controller_app_option(runner: CliRunner, write_yaml, app: str) -> None:
    result = runner.invoke(cli, ["probe", str(write_yaml(TOPO % "auto")), "--controller-app", app])
    assert isinstance(result.exception, Refused), result.output


@pytest.mark.parametrize("verb", ["run", "up"])
def test_run_up_bad_controller_app_option(runner: CliRunner, write_yaml, verb: str) -> None:
    result = runner.invoke(cli, [verb, str(write_yaml(TOPO % "auto")), "--controller-app", "nosuch"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--controller-app" in result.output
