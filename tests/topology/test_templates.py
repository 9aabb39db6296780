"""Site templates and ranges: what they expand to, where their errors point, and that hostile
ones are refused with a located problem (never a hang or a traceback)."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from testbed.cli.main import cli
from testbed.errors import TopologyError
from testbed.topology import bounds
from testbed.topology.expand import to_yaml
from testbed.topology.loader import load, parse_text
from testbed.topology.ranges import MAX_INSTANCES, TextError, expand_range, substitute
from testbed.topology.resolve import assign_addresses, expand_members, link_params

DATA = Path(__file__).parent / "data"
TEMPLATED = DATA / "templated.yaml"

# A small alliance: two clinics from one template (line numbers below count from 1).
BASE = """\
name: t
templates:
  clinic:
    nodes:
      - {name: '{site}-sw', kind: switch}
      - {name: 'tablet-{i}', kind: ue}
    links:
      - {endpoints: ['{site}-sw', core]}
      - {endpoints: ['tablet-{i}', '{site}-sw']}
sites:
  - {name: dc, type: datacentre}
  - {name: 'clinic-{1..2}', type: clinic, template: clinic}
nodes:
  - {name: core, kind: switch, site: dc}
  - {name: emr, kind: server, site: dc, services: [emr]}
links:
  - {endpoints: [emr, core]}
"""


def problems_of(text: str) -> list:
    with pytest.raises(TopologyError) as exc:
        parse_text(textwrap.dedent(text), "t.yaml")
    return exc.value.problems


def only_problem(text: str):
    found = problems_of(text)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


# -- ranges and placeholders (the text language) --

def test_range_pads_to_the_widest_end_when_written_with_a_leading_zero() -> None:
    assert [n for n, _ in expand_range("chc-{01..12}")][::11] == ["chc-01", "chc-12"]
    assert [n for n, _ in expand_range("c{8..10}")] == ["c8", "c9", "c10"]
    assert expand_range("x-{03..12..3}") == [("x-03", "03"), ("x-06", "06"), ("x-09", "09"), ("x-12", "12")]
    assert expand_range("plain") == [("plain", None)]


@pytest.mark.parametrize("text, fragment", [
    ("c-{1..%d}" % (MAX_INSTANCES + 1), f"at most {MAX_INSTANCES}"),
    ("c-{9..1}", "upward"),
    ("c-{1..9..0}", "step"),
    ("c-{1..2}-{1..2}", "one range per name"),
    ("c-{a..b}", "braces here must be a range"),
    ("c-{1..9999999}", "braces here must be a range"),  # more digits than a range end may have
])
def test_bad_ranges_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(TextError, match=fragment):
        expand_range(text)


def test_placeholders_fill_shift_keep_width_and_escape() -> None:
    values = {"site": "chc-07", "n": "09", "supi": "016"}
    assert substitute("gnb-{site}", values) == "gnb-chc-07"
    assert substitute("{n+1}/{supi+1}/{n-9}", values) == "10/017/00"
    assert substitute("{{literal}}", values) == "{literal}"


@pytest.mark.parametrize("text, fragment", [
    ("{nope}", "unknown placeholder {nope}"),
    ("{site+1}", "not a number to shift"),
    ("{n-10}", "below zero"),
    ("{Site}", "braces here must be a placeholder"),
    ("a}b", "braces here must be a placeholder"),
])
def test_bad_placeholders_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(TextError, match=fragment):
        substitute(text, {"site": "chc-07", "n": "09"})


def test_substitution_stops_at_its_limit_not_after() -> None:
    with pytest.raises(TextError, match="more text than a topology may hold"):
        substitute("{v}" * 1000, {"v": "x" * 1000}, limit=10_000)


# -- what a templated file expands to --

def test_the_example_file_expands_sites_nodes_links_and_ues_in_order() -> None:
    topo = load(TEMPLATED)
    assert [s.name for s in topo.sites] == ["xch-dc"] + [f"chc-{k:02}" for k in range(1, 15)]
    assert [n.name for n in topo.nodes][:7] == ["core", "core-east", "emr", "chc-01-sw", "gnb-chc-01",
                                                "dr-tablet-01", "kiosk-01"]
    assert len(topo.nodes) == 3 + 14 * 4 and len(topo.links) == 2 + 14 * 4
    assert all(n.site == n.name.removeprefix("gnb-").removesuffix("-sw") for n in topo.nodes if n.kind == "gnb")
    assert topo.node("kiosk-09").site == "chc-09"  # a template's nodes belong to their instance's site
    assert [(b.ue, b.gnb, b.supi) for b in topo.ran.ues[:2]] == [
        ("dr-tablet-01", "gnb-chc-01", "imsi-460000000000010"), ("kiosk-01", "gnb-chc-01", "imsi-460000000000011")]
    assert topo.ran.ues[-1].supi == "imsi-460000000000037"  # {supi+1} of the 14th value of {10..36..2}


def test_overrides_merge_into_one_instance_or_a_range_of_them() -> None:
    topo = load(TEMPLATED)
    seven, eight = topo.site("chc-07"), topo.site("chc-08")
    assert (seven.uplink.bw, seven.uplink.delay, seven.description) == (200_000_000, 9.0, "The one across the river")
    assert (eight.uplink.delay, eight.description) == (5.0, None)
    uplinks = {ln.endpoints[0]: ln.endpoints[1] for ln in topo.links if ln.endpoints[0].endswith("-sw")}
    assert [uplinks[f"chc-{k}-sw"] for k in ("11", "12", "14")] == ["core", "core-east", "core-east"]
    link = next(ln for ln in topo.links if ln.endpoints == ("chc-07-sw", "core"))
    assert link_params(topo, link).delay == 9.0  # the instance's uplink reaches its links


def test_slice_members_by_pattern_pick_hosts_in_file_order() -> None:
    topo = load(TEMPLATED)
    clinical = next(s for s in topo.slices if s.name == "clinical")
    assert [n.name for n in expand_members(topo, clinical.members)] == [f"dr-tablet-{k:02}" for k in range(1, 15)]


def test_a_pattern_that_matches_no_host_is_an_error() -> None:
    p = only_problem(BASE + "slices:\n  - {name: s, members: ['kiosk-*'], services: [emr]}\n")
    assert (p.line, p.field) == (19, "slices[0].members[0]") and "matches no host" in p.message


def test_files_without_templates_load_exactly_as_before() -> None:
    minimal = Path(__file__).resolve().parents[2] / "topologies" / "minimal.yaml"
    topo = load(minimal)
    assert topo._source.expanded is topo._source.tree and not topo._source.origins


def test_a_site_without_template_or_range_inside_a_templated_file_keeps_its_own_lines() -> None:
    p = only_problem(BASE.replace("{name: dc, type: datacentre}", "{name: dc, type: datacenter}"))
    assert (p.line, p.field) == (11, "sites[0].type")


# -- --expand: the expanded file loads to the same topology --

@pytest.mark.parametrize("path", [TEMPLATED, DATA / "../../../topologies/xiangtan-alliance.yaml",
                                  DATA / "../../../topologies/minimal.yaml"], ids=lambda p: p.name)
def test_expanding_then_loading_gives_the_same_topology(path: Path) -> None:
    topo = load(path)
    text = to_yaml(topo._source.expanded)
    assert "\ntemplates:" not in text and "{site}" not in text
    again = parse_text(text, "expanded.yaml")
    assert again.model_dump() == topo.model_dump()
    assert assign_addresses(again) == assign_addresses(topo)


def test_expanded_text_keeps_the_files_own_comments() -> None:
    text = to_yaml(load(TEMPLATED)._source.expanded)
    assert text.startswith("# yaml-language-server: $schema=")
    assert "  - {name: gnb-chc-14, kind: gnb, site: chc-14}\n" in text  # one line per node, as written


# -- errors point at the template line, naming the instance --

def test_an_error_in_one_instance_names_the_template_line_and_the_site() -> None:
    text = BASE.replace("['{site}-sw', core]", "['{site}-sw', '{up}']")
    text = text.replace("template: clinic}", "template: clinic, vars: {up: core},\n"
                                             "     overrides: {clinic-2: {vars: {up: nowhere}}}}")
    found = [str(p) for p in problems_of(text)]
    assert "t.yaml:8 templates.clinic.links[0].endpoints[1] (in site clinic-2): unknown node 'nowhere'" in found
    assert all("clinic-1" not in p for p in found)


def test_an_error_in_every_instance_is_said_once_with_the_sites() -> None:
    p = only_problem(BASE.replace("kind: ue}", "kind: phone}"))
    assert (p.line, p.field) == (6, "templates.clinic.nodes[1].kind (in sites clinic-1, clinic-2)")
    assert "Input should be one of" in p.message


def test_many_instances_are_counted_not_listed() -> None:
    p = only_problem(BASE.replace("clinic-{1..2}", "clinic-{1..20}").replace("kind: ue}", "kind: phone}"))
    assert p.field == "templates.clinic.nodes[1].kind (in sites clinic-1, clinic-2, clinic-3 and 17 more)"


def test_duplicates_made_by_a_template_point_at_it() -> None:
    found = problems_of(BASE.replace("'tablet-{i}', kind", "tablet, kind").replace("['tablet-{i}',", "[tablet,"))
    assert "t.yaml:6 templates.clinic.nodes[1].name (in site clinic-2): duplicate name 'tablet'" in map(str, found)


def test_an_unknown_key_in_a_template_item_gets_a_hint() -> None:
    p = only_problem(BASE.replace("kind: ue}", "kind: ue, sight: dc}"))
    assert (p.line, p.field) == (6, "templates.clinic.nodes[1].sight (in sites clinic-1, clinic-2)")
    assert "did you mean 'site'" in p.message


def test_an_override_error_points_at_the_override() -> None:
    text = BASE.replace("template: clinic}", "template: clinic,\n     overrides: {clinic-2: {uplink: {bw: fast}}}}")
    p = only_problem(text)
    assert (p.line, p.field) == (13, "sites[1].overrides.clinic-2.uplink.bw (in site clinic-2)")


def test_a_range_entry_error_names_its_instances() -> None:
    p = only_problem(BASE.replace("type: clinic, template", "type: clinik, template"))
    assert (p.line, p.field) == (12, "sites[1].type (in sites clinic-1, clinic-2)")


@pytest.mark.parametrize("old, new, line, field, fragment", [
    ("'{site}-sw', kind", "'{sitename}-sw', kind", 5, "templates.clinic.nodes[0].name (in sites clinic-1, clinic-2)",
     "unknown placeholder {sitename}"),
    ("template: clinic}", "template: clinc}", 12, "sites[1].template", "unknown template 'clinc' (known: clinic)"),
    ("template: clinic}", "template: clinic, vars: {i: 3}}", 12, "sites[1].vars.i", "given by the instance"),
    ("template: clinic}", "template: clinic, vars: {v: '{1..3}'}}", 12, "sites[1].vars.v", "3 values for 2 instances"),
    ("template: clinic}", "template: clinic, vars: {v: true}}", 12, "sites[1].vars.v", "text or a whole number (got bool)"),
    ("template: clinic}", "template: clinic, overrides: {clinic-3: {}}}", 12, "sites[1].overrides.clinic-3",
     "clinic-3 is not an instance of this entry (clinic-1 … clinic-2)"),
    ("template: clinic}", "template: clinic, overrides: {clinic-1: {uplnk: {}}}}", 12,
     "sites[1].overrides.clinic-1.uplnk", "did you mean 'uplink'"),
    ("template: clinic}", "templat: clinic}", 12, "sites[1].templat (in sites clinic-1, clinic-2)",
     "did you mean 'template'"),
    ("'clinic-{1..2}'", "'clinic-{1..2}-{1..2}'", 12, "sites[1].name", "one range per name"),
    ("  clinic:\n", "  Clinic:\n", 3, "templates.Clinic", "lowercase"),
    ("    links:\n", "    lnks:\n", 7, "templates.clinic.lnks", "did you mean 'links'"),
])
def test_template_syntax_errors_are_located(old: str, new: str, line: int, field: str, fragment: str) -> None:
    assert old in BASE
    found = problems_of(BASE.replace(old, new))
    assert any((p.line, p.field) == (line, field) and fragment in p.message for p in found), [str(p) for p in found]


def test_a_template_no_site_uses_is_an_error() -> None:
    text = BASE.replace("sites:\n", "  spare:\n    nodes: []\nsites:\n")
    p = only_problem(text)
    assert (p.line, p.field, p.message) == (10, "templates.spare", "no site uses this template")


# -- hostile files: bounded, refused at a line --

def test_a_huge_range_is_refused_at_its_line() -> None:
    p = only_problem(BASE.replace("clinic-{1..2}", "clinic-{1..999999}"))
    assert (p.line, p.field) == (12, "sites[1].name") and f"at most {MAX_INSTANCES}" in p.message


def test_ranges_adding_up_to_too_many_instances_are_refused() -> None:
    text = BASE.replace("  - {name: 'clinic-{1..2}', type: clinic, template: clinic}\n",
                        "".join(f"  - {{name: 'c{k}-{{1..400}}', type: clinic, template: clinic}}\n" for k in range(3)))
    p = only_problem(text)
    assert (p.line, p.field) == (14, "sites[3].name") and f"more than {MAX_INSTANCES} site instances" in p.message


def test_an_alias_bomb_inside_a_template_is_refused_while_expanding() -> None:
    # 10 * 4**5 = 10 240 items: within the file's limit once, over it stamped into 10 sites
    bomb = "\n".join(["  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] +
                     [f"  a{k}: &a{k} [*a{k - 1}, *a{k - 1}, *a{k - 1}, *a{k - 1}]" for k in range(1, 6)])
    big = "      - {name: 'big-{i}', kind: host, command: *a5}"
    text = BASE.replace("    nodes:\n", f"    nodes:\n{big}\n", 1).replace("clinic-{1..2}", "clinic-{1..10}")
    text = text.replace("name: t\n", f"name: t\nx-anchors:\n{bomb}\n", 1)
    p = only_problem(text)
    assert p.line == text.splitlines().index(big) + 1 and p.field.startswith("templates.clinic.nodes[0] (in site clinic-")
    assert p.message == f"the templates expand to more than {bounds.MAX_NODES} YAML nodes"


def test_the_template_expansion_is_bounded_by_the_files_limits(monkeypatch) -> None:
    monkeypatch.setattr(bounds, "MAX_NODES", 200)
    p = only_problem(BASE.replace("clinic-{1..2}", "clinic-{1..40}"))
    assert "more than 200 YAML nodes" in p.message and p.line in (4, 5, 6, 7, 8)


def test_templates_cannot_nest() -> None:
    found = problems_of(BASE.replace("      - {name: 'tablet-{i}', kind: ue}\n",
                                     "      - {name: 'tablet-{i}', kind: ue}\n      - {template: clinic}\n"))
    assert "t.yaml:7 templates.clinic.nodes[2].template (in sites clinic-1, clinic-2): unknown key" in map(str, found)


def test_a_var_value_is_not_expanded_again() -> None:
    p = only_problem(BASE.replace("template: clinic}", "template: clinic, vars: {v: '{site}'}}"))
    assert (p.line, p.field) == (12, "sites[1].vars.v") and "must be a range" in p.message


# -- the README's example runs as written --

def readme_example() -> tuple[str, list[str]]:
    """The README's templated file and the problems it shows for it (indented `FILE:LINE` lines)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Site templates and ranges", 1)[1].split("\n## ", 1)[0]
    yaml = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    shown = [line.strip() for line in section.splitlines() if line.startswith("    chc.yaml:")]
    return yaml, shown


def test_the_readme_example_validates_and_is_the_tested_file(tmp_path: Path) -> None:
    yaml, _ = readme_example()
    path = tmp_path / "chc.yaml"
    path.write_text(yaml)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "15 sites, 59 nodes" in " ".join(result.stdout.split())
    assert load(path).model_dump() == load(TEMPLATED).model_dump()


def test_the_readme_errors_are_what_the_loader_says(tmp_path: Path) -> None:
    yaml, shown = readme_example()
    broken = yaml.replace("{name: 'kiosk-{i}', kind: ue}", "{name: 'kiosk-{i}', kind: phone}")
    broken = broken.replace("{uplink: {delay: 9ms}", "{uplink: {delay: soon}")
    assert broken.count("phone") == 1 and broken.count("soon") == 1
    with pytest.raises(TopologyError) as exc:
        parse_text(broken, "chc.yaml")
    assert [str(p) for p in exc.value.problems] == shown


# -- the reference topology is written with templates and means what it meant --

REFERENCE = Path(__file__).resolve().parents[2] / "topologies" / "xiangtan-alliance.yaml"
HAND_WRITTEN = DATA / "xiangtan-expanded.yaml"  # the reference as written before templates
# The one documented difference: templated nodes are appended after the written ones, so the
# expert's workstation (written last before) is now written before the units, after mec-01.
MOVED, MOVED_AFTER = "expert-ws", "mec-01"


def test_the_templated_reference_is_the_hand_written_one() -> None:
    new, old = load(REFERENCE).model_dump(), load(HAND_WRITTEN).model_dump()
    moved = next(n for n in old["nodes"] if n["name"] == MOVED)
    nodes = [n for n in old["nodes"] if n["name"] != MOVED]
    nodes.insert(next(i for i, n in enumerate(nodes) if n["name"] == MOVED_AFTER) + 1, moved)
    old["nodes"] = nodes
    for key in old:  # one field at a time, so a failure names it
        assert new[key] == old[key], (f"`{key}` of the reference differs from the hand-written fixture; a change "
                                      f"outside the templates must be made in {HAND_WRITTEN.name} too")


def test_the_reference_writes_its_units_once() -> None:
    text = REFERENCE.read_text()
    assert len(text.splitlines()) < 300  # 518 lines by hand
    topo = load(REFERENCE)
    assert len([s for s in topo.sites if s.type != "datacentre"]) == 31 and len(topo.ran.ues) == 55
    assert "chc-07" not in text and "{name: dr-tablet-12" not in text  # stamped out, not written
