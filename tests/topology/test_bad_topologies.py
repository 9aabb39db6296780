"""Bad topology files: each must fail to load with a problem naming the exact line,
field path and cause, and the CLI must print `FILE:LINE field` and exit 2.

Every YAML text below starts at line 1 (dedented, no leading blank line), so the
line numbers in the expectations can be checked by counting.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from testbed.cli.main import cli
from testbed.errors import Problem, TopologyError
from testbed.topology.loader import load

import bad_graph_cases  # the case tables beside this file (pytest puts tests/topology on sys.path)
import bad_policy_cases
import bad_schema_cases


CASES = [*bad_schema_cases.CASES, *bad_graph_cases.CASES, *bad_policy_cases.CASES]


def _load_problems(path: Path) -> list[Problem]:
    with pytest.raises(TopologyError) as info:
        load(path)
    err = info.value
    assert err.exit_code == 2
    assert err.problems, "TopologyError without problems"
    return err.problems


@pytest.mark.parametrize(("text", "field", "line", "fragment"), CASES)
def test_bad_topology_is_located(write_yaml, text: str, field: str, line: int, fragment: str) -> None:
    path = write_yaml(text)
    problems = _load_problems(path)
    assert all(p.file == str(path) for p in problems)
    matching = [p for p in problems if p.field == field and p.line == line and fragment in p.message]
    assert matching, f"no problem ({field!r}, line {line}, {fragment!r}) in:\n" + "\n".join(map(str, problems))


def test_there_are_many_distinct_bad_files() -> None:
    texts = [c.values[0] for c in CASES]
    assert len(set(texts)) == len(texts) >= 25


def test_problem_str_is_file_line_field_message(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch, services: [emr]}
        """)
    (p,) = _load_problems(path)
    assert str(p) == f"{path}:3 nodes[0].services: a switch does not offer services"


def test_all_schema_errors_reported_sorted_by_line(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - name: h1
            kind: server
            cpus: -1
        links:
          - endpoints: [h1, sw]
            bw: fast
            loss: 200%
        slices:
          - {name: s1, sd: "12"}
        controller: {remote: "nope"}
        """)
    problems = _load_problems(path)
    assert [(p.line, p.field) for p in problems] == [
        (6, "nodes[1].cpus"),
        (9, "links[0].bw"),
        (10, "links[0].loss"),
        (12, "slices[0].sd"),
        (13, "controller.remote"),
    ]


def test_all_graph_errors_reported(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        sites:
          - {name: dc, type: datacentre}
        nodes:
          - {name: sw, kind: switch, site: dc}
          - {name: h1, kind: server, site: dcc, ip: 10.77.0.10}
          - {name: h2, kind: server, ip: 10.77.0.10}
          - {name: h2, kind: vdi}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, sw]}
          - {endpoints: [sw, ghost]}
        slices:
          - {name: s1, fiveqi: 4242}
        workloads:
          - {name: w1, type: ping, from: [h1], to: nowhere}
        """)
    problems = _load_problems(path)
    located = sorted((p.line, p.field) for p in problems)
    assert located == [
        (6, "nodes[1].site"),
        (7, "nodes[2].ip"),
        (8, "nodes[3].name"),
        (12, "links[2].endpoints[1]"),
        (14, "slices[0].fiveqi"),
        (16, "workloads[0].to"),
    ], "\n".join(map(str, problems))


def test_missing_file_is_a_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    problems = _load_problems(path)
    assert len(problems) == 1
    (p,) = problems
    assert p.file == str(path) and p.line is None and p.field == ""
    assert "cannot read file" in p.message and "No such file" in p.message
    assert str(p).startswith(str(path))


def test_directory_instead_of_file_is_a_clear_problem(tmp_path: Path) -> None:
    (p,) = _load_problems(tmp_path)
    assert "cannot read file" in p.message


def test_non_utf8_file_is_a_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: t\ndescription: Xiangtan Shi\n".encode("latin-1") + b"\xff\xfe\n")
    (p,) = _load_problems(path)
    assert "utf-8" in p.message.lower()


def test_infinite_rate_is_a_problem_not_a_crash(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        defaults:
          link: {bw: .inf}
        nodes:
          - {name: sw, kind: switch}
        """)
    problems = _load_problems(path)
    assert any(p.field == "defaults.link.bw" and p.line == 3 for p in problems)


def test_error_in_merged_key_is_located(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - &sw {name: sw, kind: switch, site: nowhere}
          - {<<: *sw, name: sw2}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [sw2, sw]}
        """)
    problems = _load_problems(path)
    assert any(p.field == "nodes[1].site" and p.line == 4 for p in problems)


def test_unlinked_first_node_is_one_problem_not_a_cascade(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: lonely, kind: server}
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
        """)
    problems = _load_problems(path)
    assert [(p.line, p.field) for p in problems] == [(3, "nodes[0].name")], "\n".join(map(str, problems))


def test_explicit_mac_colliding_with_generated_mac(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, mac: "02:7b:00:00:00:02"}
          - {name: h2, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, sw]}
        """)
    try:
        topo = load(path)
    except TopologyError:
        return  # rejecting the file is also a fix
    from testbed.topology.resolve import assign_macs

    macs = assign_macs(topo)
    assert len(set(macs.values())) == len(macs), macs


def test_broadcast_mac_for_a_host_is_rejected(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, mac: "ff:ff:ff:ff:ff:ff"}
        links:
          - {endpoints: [h1, sw]}
        """)
    problems = _load_problems(path)
    assert any(p.field == "nodes[1].mac" and p.line == 4 for p in problems)


def test_negative_memory_is_rejected(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, memory: -5}
        links:
          - {endpoints: [h1, sw]}
        """)
    problems = _load_problems(path)
    assert any(p.field == "nodes[1].memory" and p.line == 4 for p in problems)


# --- the CLI -------------------------------------------------------------------------


def test_cli_validate_bad_file_prints_file_line_field(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("name: t\nnodes:\n  - {name: sw, kind: switch}\n  - {name: h1, kind: server}\n"
                                "links:\n  - {endpoints: [h1, sw], bw: 10 parsecs}\n")
    result = CliRunner().invoke(cli, ["validate", "bad.yaml"])
    assert result.exit_code == 2, result.output
    assert "bad.yaml:6" in result.stderr
    assert "links[0].bw" in result.stderr
    assert "expected a rate" in result.stderr
    assert "1 problem(s)" in result.stderr


def test_cli_validate_reports_every_file(tmp_path: Path, monkeypatch, minimal_topology_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("name: t\nnodes: []\n")
    result = CliRunner().invoke(cli, ["validate", "bad.yaml", str(minimal_topology_path)])
    assert result.exit_code == 2
    assert "bad.yaml:2" in result.stderr and "nodes" in result.stderr
    assert "minimal.yaml" in result.stdout


def test_cli_validate_missing_file_exits_2(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "missing.yaml"])
    assert result.exit_code == 2
    assert "missing.yaml" in result.stderr and "cannot read file" in result.stderr


def test_cli_problem_lines_are_never_wrapped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path("alliance-" + "x" * 90, "site-configs-" + "y" * 90, "more-" + "z" * 90)
    folder.mkdir(parents=True)
    bad = folder / "bad.yaml"
    bad.write_text("name: t\nnodes: []\n")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2 nodes: List should have at least 1 item" in result.stderr.splitlines()[0]


def test_cli_prints_user_text_that_looks_like_markup(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text('name: t\ndefaults:\n  link: {bw: "[/]"}\nnodes:\n  - {name: sw, kind: switch}\n')
    result = CliRunner().invoke(cli, ["validate", "bad.yaml"])
    assert result.exit_code == 2, result.output
    assert "bad.yaml:3" in result.stderr and "got '[/]'" in result.stderr


def test_cli_shows_the_bad_dict_key_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("name: t\ndefaults:\n  kinds: {router: {cpus: 1}}\nnodes:\n  - {name: sw, kind: switch}\n")
    result = CliRunner().invoke(cli, ["validate", "bad.yaml"])
    assert result.exit_code == 2
    line = result.stderr.splitlines()[0]
    assert line.startswith("bad.yaml:3 defaults.kinds.router") and not line.startswith("bad.yaml:3 defaults.kinds.router.:")
