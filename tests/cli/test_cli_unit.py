"""The CLI verbs that need no root: help, schema, validate, argument errors, and the
run-finding verbs (status/down/exec) against an empty state directory."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import testbed.cli.main as cli_main
from testbed.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
MINIMAL = REPO / "topologies" / "minimal.yaml"
REFERENCE = REPO / "topologies" / "xiangtan-alliance.yaml"
VERBS = ("validate", "schema", "doctor", "up", "down", "status", "exec", "run", "clean")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def empty_state_dir(tmp_path: Path, monkeypatch) -> Path:
    """Every test sees its own empty run-state directory, never /run/testbed."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("TESTBED_STATE_DIR", str(state))
    return state


@pytest.fixture
def no_build(monkeypatch):
    """Fail loudly if a command tries to build a network."""
    def refuse(*_a, **_kw):
        raise AssertionError("the command tried to build a testbed")
    monkeypatch.setattr(cli_main, "_build", refuse)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_verb(runner: CliRunner, flag: str) -> None:
    result = runner.invoke(cli, [flag])
    assert result.exit_code == 0
    for verb in VERBS:
        assert f"  {verb} " in result.output, verb


def test_no_arguments_shows_usage(runner: CliRunner) -> None:
    # a missing verb is a usage error: exit 2, as for every other usage error (click >= 8.2)
    result = runner.invoke(cli, [])
    assert result.exit_code == 2
    assert "Usage:" in result.output
    for verb in VERBS:  # the help, not just a one-line usage
        assert f"  {verb} " in result.output, verb


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(runner: CliRunner, verb: str) -> None:
    result = runner.invoke(cli, [verb, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_schema_prints_json_schema(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["$schema"].startswith("https://json-schema.org/")
    assert data["title"] == "testbed topology"
    assert "nodes" in data["properties"]


def test_schema_output_file_matches_shipped(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    result = runner.invoke(cli, ["schema", "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text() == (REPO / "schemas" / "topology.schema.json").read_text()


@pytest.mark.parametrize("path", [MINIMAL, REFERENCE], ids=lambda p: p.name)
def test_validate_shipped_topologies(runner: CliRunner, path: Path) -> None:
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert path.name in result.stdout
    assert "nodes" in result.stdout and "links" in result.stdout


def test_validate_needs_a_file(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_run_with_unknown_format_exits_2_without_building(runner: CliRunner, no_build) -> None:
    result = runner.invoke(cli, ["run", str(MINIMAL), "--format", "xml"])
    assert result.exit_code == 2, result.output
    assert "--format" in result.stderr and "xml" in result.stderr
    assert "json" in result.stderr  # lists the choices


def test_run_with_bad_topology_exits_2_without_building(runner: CliRunner, no_build, tmp_path: Path,
                                                        monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("name: t\nnodes: []\n")
    result = runner.invoke(cli, ["up", "bad.yaml"])
    assert result.exit_code == 2, result.output
    assert "bad.yaml:2" in result.stderr and "nodes" in result.stderr


def test_status_with_no_runs(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["status"])
    assert result.exit_code == 0
    assert "no testbed runs" in result.stdout


def test_status_json_with_no_runs(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["status", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_status_with_missing_state_dir(runner: CliRunner, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TESTBED_STATE_DIR", str(tmp_path / "does-not-exist"))
    result = runner.invoke(cli, ["status"])
    assert result.exit_code == 0
    assert "no testbed runs" in result.stdout


def test_down_with_no_runs_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["down"])
    assert result.exit_code == 2
    assert "no testbed is running" in result.stderr
    assert "Traceback" not in result.output


def test_down_unknown_run_id_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["down", "--run", "beef"])
    assert result.exit_code == 2
    assert "no run with id 'beef'" in result.stderr


def test_down_all_with_no_runs_is_a_no_op(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["down", "--all"])
    assert result.exit_code == 0


def test_exec_with_no_run_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["exec", "dr-tablet-01", "--", "ping", "-c1", "emr"])
    assert result.exit_code == 2
    assert "no testbed is running" in result.stderr


def test_debug_flag_raises_the_error(runner: CliRunner) -> None:
    from testbed.errors import RunNotFound

    result = runner.invoke(cli, ["--debug", "down"])
    assert isinstance(result.exception, RunNotFound)


TEMPLATED = REPO / "tests" / "topology" / "data" / "templated.yaml"


@pytest.mark.parametrize("path", [TEMPLATED, REFERENCE, MINIMAL], ids=lambda p: p.name)
def test_validate_expand_prints_a_file_that_loads_to_the_same_topology(runner: CliRunner, tmp_path: Path,
                                                                       path: Path) -> None:
    from testbed.runner import load

    result = runner.invoke(cli, ["validate", "--expand", str(path)])
    assert result.exit_code == 0, result.output
    assert "\ntemplates:" not in result.stdout and "✓" not in result.stdout  # the file, not the summary
    out = tmp_path / "expanded.yaml"
    out.write_text(result.stdout)
    assert load(out).model_dump() == load(path).model_dump()


def _bad_template(tmp_path: Path) -> Path:
    """The templated example with one instance's uplink made wrong by an override."""
    text = TEMPLATED.read_text().replace("chc-07: {uplink: {delay: 9ms}", "chc-07: {uplink: {delay: soon}")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    return bad


@pytest.fixture
def load_then_no_build(monkeypatch):
    """`_build` loads the file as the real one does first, then refuses to build anything."""
    from testbed.runner import load

    def load_only(topology, *_a, **_kw):
        load(topology)
        raise AssertionError("the command tried to build a testbed")
    monkeypatch.setattr(cli_main, "_build", load_only)


@pytest.mark.parametrize("argv", [["validate"], ["validate", "--expand"], ["run"], ["up"]])
def test_a_template_error_exits_2_at_its_line_naming_the_instance(runner: CliRunner, load_then_no_build,
                                                                  tmp_path: Path, argv: list[str]) -> None:
    bad = _bad_template(tmp_path)
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "delay: soon" in text)
    result = runner.invoke(cli, [*argv, str(bad)])
    assert result.exit_code == 2, result.output
    assert f"bad.yaml:{line} sites[1].overrides.chc-07.uplink.delay (in site chc-07):" in result.stderr
    assert result.stdout == ""  # --expand prints nothing for a bad file
