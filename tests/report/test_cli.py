"""`testbed report` (regenerate from report.json) and `testbed graph` (draw without building)."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from testbed.report.model import RunReport
from testbed.report.writers import write_json

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli():
    from testbed.cli.main import cli as group

    return lambda *args: CliRunner().invoke(group, [str(a) for a in args])


def test_report_regenerates_every_format(cli, rep: RunReport, tmp_path: Path) -> None:
    write_json(rep, tmp_path / "in.json")
    out = tmp_path / "out"
    result = cli("report", tmp_path / "in.json", "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "report.html", "report.json"]
    assert json.loads((out / "report.json").read_text())["checks"] == json.loads((tmp_path / "in.json").read_text())["checks"]
    assert "SLO verdicts per slice" in result.output and "FAIL" in result.output
    html = (out / "report.html").read_text()
    assert 'id="slo-table"' in html and "study-transfer" in html


def test_report_without_graphviz_says_why_there_is_no_drawing(cli, rep: RunReport, tmp_path: Path,
                                                              monkeypatch) -> None:
    from testbed.errors import TestbedError
    from testbed.report import graph

    def missing(*_a, **_kw):
        raise TestbedError("Graphviz's `dot` is not installed")
    monkeypatch.setattr(graph, "render", missing)
    write_json(rep, tmp_path / "in.json")
    assert cli("report", tmp_path / "in.json", "-o", tmp_path, "--format", "html").exit_code == 0
    assert "No drawing: Graphviz" in (tmp_path / "report.html").read_text()


def test_report_never_overwrites_its_input(cli, rep: RunReport, tmp_path: Path) -> None:
    write_json(rep, tmp_path / "report.json")
    before = (tmp_path / "report.json").read_bytes()
    result = cli("report", tmp_path / "report.json", "--format", "json,html")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.json").read_bytes() == before and (tmp_path / "report.html").exists()
    assert not (tmp_path / "junit.xml").exists()


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"checks": []}'])
def test_report_refuses_what_is_not_a_report(cli, tmp_path: Path, content: str) -> None:
    (tmp_path / "x.json").write_text(content)
    result = cli("report", tmp_path / "x.json", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "report" in result.output


def test_report_unknown_format_is_a_usage_error(cli, rep: RunReport, tmp_path: Path) -> None:
    write_json(rep, tmp_path / "in.json")
    assert cli("report", tmp_path / "in.json", "--format", "pdf").exit_code == 2


@pytest.mark.parametrize("name", ["minimal", "xiangtan-alliance"])
def test_graph_draws_svg_without_building(cli, dot, tmp_path: Path, name: str, monkeypatch) -> None:
    import testbed.engine.testbed as engine

    monkeypatch.setattr(engine.Testbed, "up", lambda *_: pytest.fail("graph tried to build"))
    out = tmp_path / f"{name}.svg"
    result = cli("graph", REPO / "topologies" / f"{name}.yaml", "-o", out)
    assert result.exit_code == 0, result.output
    svg = html.unescape(out.read_text())
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg and "legend" in svg
    assert svg.count('class="node kind-') >= (7 if name == "minimal" else 100)
    assert svg.count('class="cluster"') >= (2 if name == "minimal" else 31)


def test_graph_png_and_default_name(cli, dot, tmp_path: Path, monkeypatch) -> None:
    result = cli("graph", REPO / "topologies" / "minimal.yaml", "-o", tmp_path / "m.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.png").read_bytes().startswith(b"\x89PNG")
    monkeypatch.chdir(tmp_path)
    assert cli("graph", REPO / "topologies" / "minimal.yaml").exit_code == 0
    assert (tmp_path / "minimal.svg").exists()


def test_graph_bad_inputs(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes: [{name: a, kind: nope}]\n")
    result = cli("graph", bad, "-o", tmp_path / "x.svg")
    assert result.exit_code == 2 and "bad.yaml:2" in result.output and not (tmp_path / "x.svg").exists()
    result = cli("graph", REPO / "topologies" / "minimal.yaml", "-o", tmp_path / "x.jpg")
    assert result.exit_code == 1 and ".svg" in result.output
