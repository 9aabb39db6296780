"""The 5G path in the built network, without root: added nodes, the run's policy, sessions as hosts.

The rule-level test pushes frames through the controller plan on the fake
switches of testbed.slicing.simulate: a PDU session's packets (from its UPF's
port, with the session address) are admitted for what its slice grants, and
the UE's own address no longer reaches anything but its gNB.
"""
from __future__ import annotations

from testbed.engine.ran import run_controller_plan
from testbed.openflow.layout import make_layout
from testbed.ran.network import enforced_policy, prepare, run_policy, session_host
from testbed.slicing.policy import INFRA
from testbed.slicing.simulate import FakeNetwork
from testbed.topology.loader import parse_text

from tests.slicing.fakenet import SYN


def test_prepare_adds_the_core_and_an_implicit_upf_beside_the_data_centre(minimal):
    topo, plan = prepare(minimal, "ab12")
    added = {n.name: n for n in topo.nodes} .keys() - {n.name for n in minimal.nodes}
    assert added == {plan.core.name, "upf"}
    core = topo.node(plan.core.name)
    assert core.kind == "core" and str(core.ip.ip) == str(plan.core.address)
    assert [s.name for s in core.services] == ["ngap"]
    assert {tuple(ln.endpoints) for ln in topo.links[-2:]} == {(plan.core.name, "core"), ("upf", "core")}
    again, plan2 = prepare(topo, "ab12")  # a reader of the run derives the same plan from the built topology
    assert again is topo and plan2.core == plan.core and [s.address for s in plan2.sessions] == \
        [s.address for s in plan.sessions]


def test_backend_off_means_no_5g_path(minimal):
    off = minimal.model_copy(update={"ran": minimal.ran.model_copy(update={"backend": "off"})})
    topo, plan = prepare(off)
    assert plan is None and topo is off


def test_the_run_policy_adds_the_5g_infrastructure_flows(minimal):
    topo, plan = prepare(minimal, "ab12")
    infra = {(g.src, g.dst, g.service) for g in run_policy(topo, plan).grants if g.slice == INFRA}
    assert {("dr-tablet-01", "gnb-clinic", "rls"), ("kiosk-01", "gnb-clinic", "rls"),
            ("gnb-clinic", plan.core.name, "ngap"), (plan.core.name, "upf", "pfcp"),
            ("gnb-clinic", "upf", "gtpu"), ("upf", "gnb-clinic", "gtpu")} <= infra
    assert not any(g.src == "dr-tablet-01" and g.dst != "gnb-clinic" for g in run_policy(topo, plan).grants
                   if g.slice == INFRA)
    # the servers' next hop back to the sessions: ARP neighbours, not a grant
    assert set(run_policy(topo, plan).neighbours) == {("upf", "emr"), ("upf", "pacs")}


def test_slice_grants_move_from_the_ue_to_its_sessions(minimal):
    topo, plan = prepare(minimal, "ab12")
    pol, aliases = enforced_policy(topo, plan)
    doc = next(s for s in plan.sessions if s.ue == "dr-tablet-01")
    assert aliases == {session_host(s): ("upf", str(s.address)) for s in plan.sessions}
    assert {(g.src, g.dst) for g in pol.grants if g.slice == "clinical"} == \
        {(session_host(doc), "emr"), (session_host(doc), "pacs")}
    assert not [g for g in pol.grants if g.src == "dr-tablet-01" and g.slice != INFRA]


def _net(topo, plan):
    lay = make_layout(topo, "ab12")
    w = lay.wiring()
    ctl = run_controller_plan(topo, lay, plan)
    return FakeNetwork(ctl, w), lay, ctl


def _syn(lay, src_host: str, src_ip: str, dst: str, port: int, eth_dst: str | None = None) -> dict:
    return dict(eth_src=lay.macs[src_host], eth_dst=eth_dst or lay.macs[dst], eth_type=0x0800, ipv4_src=src_ip,
                ipv4_dst=str(lay.ips[dst].ip), ip_proto=6, ip_frag=0, tcp_src=40000, tcp_dst=port, tcp_flags=SYN)


def test_on_the_switches_a_session_reaches_its_slice_and_the_ue_address_only_its_gnb(minimal):
    topo, plan = prepare(minimal, "ab12")
    sim, lay, ctl = _net(topo, plan)
    doc = next(s for s in plan.sessions if s.ue == "dr-tablet-01")
    kiosk = next(s for s in plan.sessions if s.ue == "kiosk-01")
    got = lambda host, frame: [h for h, _ in sim.send(host, frame)]  # noqa: E731
    # N6: the session's packets leave the UPF's port with the session address
    assert got("upf", _syn(lay, "upf", str(doc.address), "emr", 443)) == ["emr"]
    assert got("upf", _syn(lay, "upf", str(doc.address), "pacs", 104)) == ["pacs"]
    assert got("upf", _syn(lay, "upf", str(kiosk.address), "pacs", 104)) == []  # the kiosk slice: EMR only
    assert got("upf", _syn(lay, "upf", str(doc.address), "emr", 22)) == []
    # the UE's own address: only its radio link to its gNB
    assert got("dr-tablet-01", _syn(lay, "dr-tablet-01", str(lay.ips["dr-tablet-01"].ip), "emr", 443)) == []
    rls = dict(_syn(lay, "dr-tablet-01", str(lay.ips["dr-tablet-01"].ip), "gnb-clinic", 0), ip_proto=17,
               udp_src=4997, udp_dst=4997)
    for k in ("tcp_src", "tcp_dst", "tcp_flags"):
        rls.pop(k)
    assert got("dr-tablet-01", rls) == ["gnb-clinic"]
    # the plan names the sessions, so `testbed flows` labels their rules
    assert ctl["hosts"][session_host(doc)] == {**ctl["hosts"]["upf"], "ip": str(doc.address),
                                                "arp_ip": ctl["hosts"]["upf"]["ip"]}


def test_a_ue_in_no_site_with_a_gnb_is_a_located_problem():
    import pytest

    from testbed.ran.errors import RanPlanError

    text = ("name: x\nnodes:\n  - {name: s, kind: switch}\n  - {name: g, kind: gnb}\n  - {name: u, kind: ue}\n"
            "links:\n  - {endpoints: [g, s]}\n  - {endpoints: [u, s]}\n")
    with pytest.raises(RanPlanError) as e:
        prepare(parse_text(text, "x.yaml"))
    assert "has no gNB at its site" in str(e.value) and "x.yaml" in str(e.value)


def test_the_ueransim_backend_fails_before_anything_is_built_and_says_why(minimal):
    from types import SimpleNamespace

    import pytest

    from testbed.engine.ran import preflight
    from testbed.errors import PlatformError
    from testbed.ran import n2

    topo = minimal.model_copy(update={"ran": minimal.ran.model_copy(update={"backend": "ueransim"})})
    topo, plan = prepare(topo, "ab12")
    with pytest.raises(PlatformError) as e:
        preflight(SimpleNamespace(ran=plan, topo=topo))
    assert ("SCTP" in str(e.value)) != n2.sctp_available() or "not built yet" in str(e.value)


def test_the_file_may_bind_upfs_and_choose_the_session_pool():
    from ipaddress import IPv4Network

    from tests.conftest import REPO

    bindings = ("  tac: 1\n  pool: 10.60.0.0/16\n  upfs:\n    - {name: upf-01}\n"
                "    - {name: upf-mec-city, sites: [branch-north]}\n")
    text = (REPO / "topologies" / "xiangtan-alliance.yaml").read_text().replace("  tac: 1\n", bindings, 1)
    topo, plan = prepare(parse_text(text, "alliance.yaml"), "ab12")
    assert [(u.name, u.role, u.sites) for u in plan.upfs] == [("upf-01", "central", ()),
                                                             ("upf-mec-city", "mec", ("branch-north",))]
    assert all(p.network.subnet_of(IPv4Network("10.60.0.0/16")) for p in plan.pools)
    site = {g.name: g.site for g in plan.gnbs}
    assert {s.upf for s in plan.sessions if site[s.gnb] == "branch-north"} == {"upf-mec-city"}
    assert {s.upf for s in plan.sessions if site[s.gnb] != "branch-north"} == {"upf-01"}


def test_validate_summary_counts_the_planned_5g_part_and_warns_of_an_idle_mec_upf(mec):
    """`testbed validate` said "0 UEs bound" for UEs bound implicitly, and a MEC UPF that carried nothing
    passed without a word (a tester's UPF in a site without a gNB)."""
    from tests.ran.conftest import mec_topology
    from testbed.ran.network import summary

    text, warnings = summary(mec)
    assert text.startswith("2 UE(s) with 4 PDU session(s), 2 gNB(s), UPFs ") and "upf-edge (MEC for clinic-1)" in text
    assert warnings == []
    # a third clinic with its gNB and a UPF of its own, but no UE: that UPF carries nothing
    from tests.ran.conftest import MEC_TOPOLOGY
    from testbed.topology.loader import parse_text
    import textwrap

    text = textwrap.dedent(MEC_TOPOLOGY % {
        "extra_nodes": "- {name: sw-3, kind: switch, site: clinic-3}\n  - {name: gnb-3, kind: gnb, site: clinic-3}\n"
                       "  - {name: upf-3, kind: upf, site: clinic-3}",
        "extra_links": "- {endpoints: [sw-3, core]}\n  - {endpoints: [gnb-3, sw-3]}\n  - {endpoints: [upf-3, sw-3]}",
        "ran": ""}).replace("  - {name: clinic-2, type: clinic}\n",
                            "  - {name: clinic-2, type: clinic}\n  - {name: clinic-3, type: clinic}\n")
    _, warnings = summary(parse_text(text, "idle.yaml"))
    assert len(warnings) == 1 and warnings[0].startswith("MEC UPF upf-3 serves no PDU session"), warnings


def test_a_upf_in_a_site_without_a_gnb_is_an_aggregation_point_serving_the_sites_nearer_to_it():
    from tests.ran.conftest import mec_topology
    from testbed.ran.plan import ran_plan

    # the edge UPF and the cache move to a site of their own that has no gNB, still at clinic-1's switch
    topo = mec_topology(extra_nodes="", extra_links="")
    text = topo.model_dump(mode="json", exclude_none=True)
    text["sites"].append({"name": "agg", "type": "clinic"})
    for n in text["nodes"]:
        if n["name"] in ("upf-edge", "cache-1"):
            n["site"] = "agg"
    from testbed.topology.model import Topology

    plan = ran_plan(Topology.model_validate(text))
    edge = next(u for u in plan.upfs if u.name == "upf-edge")
    assert edge.role == "mec" and edge.sites == ("clinic-1",)
    assert any(s.upf == "upf-edge" for s in plan.sessions)
