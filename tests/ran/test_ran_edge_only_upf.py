"""A file whose only UPF sits at the edge still gets its central UPF in the data centre (README: "a UPF in
the data centre is central; one elsewhere is a MEC UPF"); an earlier plan made that edge UPF central."""
from __future__ import annotations

from tests.ran.conftest import MEC_TOPOLOGY

from testbed.ran.network import prepare
from testbed.topology.loader import parse_text


def _edge_only():
    text = MEC_TOPOLOGY % {"extra_nodes": "", "extra_links": "", "ran": ""}
    text = text.replace("  - {name: upf-central, kind: upf, site: dc}\n", "")
    text = text.replace("  - {endpoints: [upf-central, core]}\n", "")
    return parse_text(text, "edge-only.yaml")


def test_an_edge_upf_stays_mec_and_the_data_centre_gets_a_central_one():
    topo, plan = prepare(_edge_only(), "abcd")
    roles = {u.name: u.role for u in plan.upfs}
    assert roles["upf-edge"] == "mec"
    [central] = [n for n, r in roles.items() if r == "central"]
    assert topo.node(central).site == "dc"  # added as a node in the data centre
    mec = next(s for s in plan.sessions if s.upf == "upf-edge")
    assert mec.fallback_upf == central  # and the MEC sessions fall back to it
