"""The shipped topologies load, the reference one models the Xiangtan alliance, and the
published JSON Schema is exactly what the model generates (so it cannot go stale)."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from testbed.topology.loader import load
from testbed.topology.model import Topology
from testbed.slicing.policy import targets
from testbed.topology.schema import schema, schema_json
from testbed.workloads import extend_schema

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY_FILES = sorted((REPO / "topologies").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/topology.schema.json"


def test_topologies_dir_is_not_empty() -> None:
    names = {p.name for p in TOPOLOGY_FILES}
    assert {"minimal.yaml", "xiangtan-alliance.yaml"} <= names


@pytest.mark.parametrize("path", TOPOLOGY_FILES, ids=lambda p: p.name)
def test_every_shipped_topology_loads(path: Path) -> None:
    topo = load(path)
    assert isinstance(topo, Topology)
    assert topo.nodes


@pytest.mark.parametrize("path", TOPOLOGY_FILES, ids=lambda p: p.name)
def test_every_shipped_topology_has_schema_modeline(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == MODELINE
    assert (path.parent / "../schemas/topology.schema.json").resolve().is_file()


def test_reference_has_at_least_30_alliance_units(reference: Topology) -> None:
    units = [s for s in reference.sites if s.type != "datacentre"]
    assert len(units) >= 30
    assert sum(s.type == "datacentre" for s in reference.sites) == 1


def test_reference_has_the_clinical_systems(reference: Topology) -> None:
    vdi_hosts = [n for n in reference.nodes if n.kind == "vdi"]
    assert len(vdi_hosts) >= 3
    assert all(any(s.name == "vdi" for s in n.services) for n in vdi_hosts)
    for service in ("emr", "pacs", "his"):
        assert targets(reference, service), f"nobody offers {service}"
    assert [n for n in reference.nodes if n.kind == "mec"]
    assert [n for n in reference.nodes if n.kind == "upf"]


def test_reference_has_the_three_county_hospitals(reference: Topology) -> None:
    counties = [s for s in reference.sites if s.type == "county-hospital"]
    assert len(counties) == 3
    described = " | ".join(s.description or "" for s in counties)
    for town in ("Xiangtan County", "Xiangxiang", "Shaoshan"):
        assert town in described, described


def test_reference_has_a_gnb_at_every_alliance_unit(reference: Topology) -> None:
    gnb_sites = {n.site for n in reference.nodes if n.kind == "gnb"}
    units = {s.name for s in reference.sites if s.type != "datacentre"}
    assert units <= gnb_sites, units - gnb_sites


def test_reference_ues_have_several_roles_and_are_bound(reference: Topology) -> None:
    ues = [n for n in reference.nodes if n.kind == "ue"]
    roles = Counter(n.name.rsplit("-", 1)[0] for n in ues)
    assert {"dr-tablet", "nurse-cart", "ward-term", "kiosk"} <= set(roles), roles
    bound = {b.ue for b in reference.ran.ues}
    assert bound and bound <= {n.name for n in ues}
    assert len(reference.slices) >= 3
    assert len({s.fiveqi for s in reference.slices}) >= 3


def test_shipped_schema_matches_the_model() -> None:
    shipped = (REPO / "schemas" / "topology.schema.json").read_text(encoding="utf-8")
    assert shipped == schema_json(extend_schema), "schemas/topology.schema.json is stale: run `testbed schema -o schemas/topology.schema.json`"


def test_schema_is_a_draft_2020_12_schema_of_the_file_format() -> None:
    s = schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["additionalProperties"] is False
    assert set(s["required"]) == {"name", "nodes"}
    # The `from`/`to` aliases are what files say, not the Python attribute names.
    workload = s["$defs"]["Workload"]["properties"]
    assert "from" in workload and "to" in workload and "src" not in workload
    json.loads(schema_json())


def _jsonschema():
    return pytest.importorskip("jsonschema", reason="jsonschema is not installed in the venv (not a dependency)")


@pytest.mark.parametrize("path", TOPOLOGY_FILES, ids=lambda p: p.name)
def test_schema_accepts_shipped_topologies(path: Path) -> None:
    jsonschema = _jsonschema()
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema()).validate(data)


def test_schema_rejects_an_unknown_key() -> None:
    jsonschema = _jsonschema()
    data = {"name": "t", "nodes": [{"name": "sw", "kind": "switch", "knd": "x"}]}
    assert list(jsonschema.Draft202012Validator(schema()).iter_errors(data))


def _unit_patterns() -> dict[str, re.Pattern]:
    """Field name -> the string pattern the schema gives its unit (rate, duration, percent)."""
    out: dict[str, re.Pattern] = {}

    def walk(obj) -> None:
        if isinstance(obj, dict):
            for key, sub in obj.get("properties", {}).items():
                for branch in sub.get("anyOf", []):
                    for inner in branch.get("anyOf", []):
                        if inner.get("type") == "string" and "pattern" in inner:
                            out[key] = re.compile(inner["pattern"])
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(schema())
    return out


@pytest.mark.parametrize("path", TOPOLOGY_FILES, ids=lambda p: p.name)
def test_schema_unit_patterns_accept_the_shipped_unit_strings(path: Path) -> None:
    """Without jsonschema: every unit string a shipped file uses matches the schema's pattern."""
    patterns = _unit_patterns()
    assert {"bw", "delay", "jitter", "loss", "rate", "latency_budget"} <= set(patterns)
    seen = 0

    def walk(obj) -> None:
        nonlocal seen
        if isinstance(obj, dict):
            for key, value in obj.items():
                if key in patterns and isinstance(value, str):
                    assert patterns[key].match(value), f"{key}: {value!r} fails the schema pattern"
                    seen += 1
                walk(value)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(YAML(typ="safe").load(path.read_text(encoding="utf-8")))
    assert seen
