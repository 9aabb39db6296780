"""Security testers' own probes (type: script): the file format, its file:line errors, the
planning, the verdicts and the CLI's arguments, and the README's worked example. No root: the
real runs are in test_script_probe_integration.py."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from testbed.cli.main import cli
from testbed.errors import TopologyError
from testbed.probe.script import ScriptRun, _result, plan_scripts
from testbed.topology.loader import load, parse_text

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
EXAMPLE = REPO / "topologies" / "probes" / "syn-from-service-port.py"

BASE = """\
name: t
nodes:
  - {name: sw, kind: switch}
  - {name: emr, kind: server, services: [emr]}
  - {name: tab, kind: ue}
links:
  - {endpoints: [emr, sw]}
  - {endpoints: [tab, sw]}
slices:
  - {name: clinical, sst: 1, members: [tab], services: [emr]}
probes:
"""


def _write(tmp_path: Path, probes: str, script: bool = True) -> Path:
    if script:
        (tmp_path / "probes").mkdir(exist_ok=True)
        (tmp_path / "probes" / "x.py").write_text("print('hi')\n")
    path = tmp_path / "topo.yaml"
    path.write_text(BASE + textwrap.dedent(probes))
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(TopologyError) as info:
        load(path)
    return [str(p) for p in info.value.problems]


def test_a_script_probe_loads_and_expect_words_map_to_pass_fail(tmp_path):
    path = _write(tmp_path, """\
          - {name: a, type: script, script: probes/x.py, from: [emr], to: [tab], expect: blocked}
          - {name: b, type: script, script: probes/x.py, from: [tab], to: [emr], expect: arrive}
          - {name: c, type: script, script: probes/x.py, from: [tab], to: [emr], expect: fail}
        """)
    topo = load(path)
    assert [p.expect for p in topo.probes] == ["fail", "pass", "fail"]
    runs = plan_scripts(topo.probes, str(path))
    assert [(r.src, r.dst, r.expect) for r in runs] == [("emr", "tab", "fail"), ("tab", "emr", "pass"),
                                                        ("tab", "emr", "fail")]
    assert all(r.script == (tmp_path / "probes" / "x.py").resolve() for r in runs)
    assert [r.id for r in runs] == ["s0000001", "s0000002", "s0000003"]
    assert runs[0].name == "a: emr -> tab (expect blocked)" and runs[1].name == "b: tab -> emr (expect arrive)"


@pytest.mark.parametrize(("probe", "where", "fragment"), [
    ("{name: a, type: script, from: [emr], to: [tab]}", "probes[0].type", "a script probe needs `script:`"),
    ("{name: a, type: script, script: probes/nope.py, from: [emr], to: [tab]}", "probes[0].script",
     "no such file"),
    ("{name: a, script: probes/x.py, from: [emr], to: [tab]}", "probes[0].script",
     "only a script probe runs a script"),
    ("{name: a, type: script, script: probes/x.py, from: [sw], to: [tab]}", "probes[0].from[0]",
     "a script probe runs in a host node; 'sw' is a switch"),
    ("{name: a, type: script, script: probes/x.py, from: [emr], to: [emr-svc]}", "probes[0].to[0]",
     "unknown node or service 'emr-svc'"),
    ("{name: a, type: script, script: probes/x.py, from: [tab], to: [emr]}\n  - "
     "{name: b, type: script, script: probes/x.py, from: [tab], to: [emr]}", "probes[0].to[0]", None),
    ("{name: a, type: script, script: probes/x.py, from: [tab], to: [emr], expect: maybe}",
     "probes[0].expect", "pass, fail, arrive, blocked"),
])
def test_bad_script_probes_name_file_line_and_field(tmp_path, probe, where, fragment):
    path = _write(tmp_path, f"  - {probe}\n")
    if fragment is None:  # a valid pair of entries: no problem at all
        assert len(load(path).probes) == 2
        return
    problems = _problems(path)
    line = len(BASE.splitlines()) + 1
    assert any(p.startswith(f"{path}:{line} {where}:") and fragment in p for p in problems), problems


def test_a_service_is_not_a_script_target(tmp_path):
    """A script runs in a node and a node's capture decides: a service name (which may stand for
    several nodes elsewhere in the file) is refused."""
    path = _write(tmp_path, "  - {name: a, type: script, script: probes/x.py, from: [tab], to: [emr]}\n")
    text = path.read_text().replace("{name: emr, kind: server", "{name: emr-1, kind: server").replace(
        "endpoints: [emr, sw]", "endpoints: [emr-1, sw]")
    path.write_text(text)
    problems = _problems(path)
    assert any(":12 probes[0].to[0]: a script probe is captured at a host node; 'emr' is a service" in p
               for p in problems), problems


def _run(expect="fail", **rep) -> ScriptRun:
    return ScriptRun("s0000001", "p", Path("/x.py"), "emr", "tab", expect), {"rc": 0, "frames_with_token": 2,
                                                                              "stderr": "", **rep}


@pytest.mark.parametrize(("expect", "rep", "seen", "status", "verdict"), [
    ("fail", {}, set(), "pass", "blocked"),
    ("fail", {}, {"tab"}, "fail", "LEAK"),
    ("fail", {"rc": 1, "stderr": "Traceback\nKeyError: 'X'"}, {"tab"}, "fail", "LEAK"),  # a leak is a leak
    ("fail", {"rc": 1, "stderr": "Traceback\nKeyError: 'X'"}, set(), "fail", "error"),
    ("fail", {"timed_out": True, "rc": -9}, set(), "fail", "error"),
    ("fail", {"frames_with_token": 0}, set(), "fail", "not sent"),
    ("pass", {}, {"tab"}, "pass", "arrived"),
    ("pass", {}, set(), "fail", "FALSE BLOCK"),
    ("pass", {"error": "the script runner did not finish"}, set(), "fail", "error"),
])
def test_verdicts(expect, rep, seen, status, verdict):
    run, report = _run(expect, **rep)
    c = _result(run, report, seen, 1.0)
    assert (c.kind, c.status, c.metrics["verdict"]) == ("probe:script", status, verdict), c.detail
    if verdict == "error" and "stderr" in rep:
        assert "KeyError: 'X'" in c.detail
    assert c.metrics["token"] == "TBP-s0000001"


@pytest.mark.parametrize(("args", "fragment"), [
    (["--script", str(EXAMPLE), "--from", "nosuch", "--to", "dr-tablet-01"], "--from: no host named 'nosuch'"),
    (["--script", str(EXAMPLE), "--from", "emr", "--to", "core"], "--to: no host named 'core'"),
    (["--from", "emr", "--to", "dr-tablet-01"], "needs --script PATH, --from NODE and --to NODE"),
    (["--script", str(EXAMPLE), "--from", "emr"], "needs --script PATH, --from NODE and --to NODE"),
])
def test_cli_script_arguments_are_checked_before_anything_is_built(args, fragment):
    r = CliRunner().invoke(cli, ["probe", str(REPO / "topologies" / "minimal.yaml"), *args])
    assert r.exit_code == 2, r.output
    assert fragment in r.output


def test_cli_script_must_exist():
    r = CliRunner().invoke(cli, ["probe", str(REPO / "topologies" / "minimal.yaml"), "--script", "nope.py",
                                 "--from", "emr", "--to", "dr-tablet-01"])
    assert r.exit_code == 2 and "nope.py" in r.output


def readme_example() -> tuple[list[str], str]:
    """The README's worked example: its `testbed probe ... --script` command and its `probes:` YAML."""
    text = README.read_text()
    section = text.split("## Your own probes (security testers)", 1)[1].split("\n## ", 1)[0]
    cmd = next(line.strip() for line in section.splitlines() if line.strip().startswith("testbed probe "))
    yaml = re.search(r"```yaml\n(probes:\n.*?)```", section, re.S).group(1)
    return cmd.split(), yaml


def test_readme_example_yaml_is_a_valid_probe_of_minimal():
    """The README's `probes:` entry, added to topologies/minimal.yaml, loads (its script path is
    relative to the topology file) and means what the command line means."""
    argv, yaml = readme_example()
    minimal = (REPO / "topologies" / "minimal.yaml").read_text()
    topo = parse_text(minimal + "\n" + yaml, str(REPO / "topologies" / "readme-example.yaml"))
    (pr,) = topo.probes
    opts = dict(zip(argv[3::2], argv[4::2]))
    assert argv[:3] == ["testbed", "probe", "topologies/minimal.yaml"]
    assert (REPO / opts["--script"]).resolve() == (REPO / "topologies" / pr.script).resolve() == EXAMPLE
    assert (pr.type, pr.src, pr.dst, pr.expect) == ("script", [opts["--from"]], [opts["--to"]], "fail")
    assert opts["--expect"] == "blocked"


def test_readme_snippet_is_what_the_example_script_does():
    snippet = README.read_text().split("(the heart of the example):", 1)[1].split("```python\n", 1)[1]
    script = EXAMPLE.read_text()
    for line in snippet.split("```", 1)[0].splitlines():
        words = re.findall(r'env\["(\w+)"\]', line)
        assert all(f'env["{w}"]' in script for w in words), line
    assert 'Raw(env["TESTBED_TOKEN"].encode())' in script and 'iface=env["TESTBED_IFACE"]' in script
