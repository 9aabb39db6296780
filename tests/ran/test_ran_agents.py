"""The built-in programs' configs (testbed.ran.agents) agree with the plan and the slice policy."""
from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network

import pytest

from testbed.ran import agents, nas
from testbed.ran.plan import RanPlan, ran_plan
from testbed.ran.planfile import plan_from_dict
from testbed.ran.upfs import UpfBinding
from testbed.slicing.policy import compile_policy
from testbed.topology.model import Topology
from tests.ran.conftest import mec_topology


@pytest.fixture(params=["minimal", "reference"])
def case(request) -> tuple[Topology, RanPlan, list[agents.Agent]]:
    topo = request.getfixturevalue(request.param)
    plan = request.getfixturevalue(f"{request.param}_plan")
    return topo, plan, agents.agents(topo, plan)


def test_one_program_per_role_in_start_order(case):
    topo, plan, out = case
    assert [a.program for a in out] == (["upf"] * len(plan.upfs) + ["amf"] + ["gnb"] * len(plan.gnbs)
                                        + ["ue"] * len(plan.subscribers))
    assert [a.node for a in out if a.program == "ue"] == [s.name for s in plan.subscribers]
    assert json.loads(json.dumps([a.config for a in out])) == [a.config for a in out]  # plain JSON
    assert out[0].argv("/run/x/upf.json", "/run/x/upf-status.json") == [
        "python3", "-m", "testbed.ran.upf", "--config", "/run/x/upf.json", "--status", "/run/x/upf-status.json"]


def test_ue_configs_carry_the_plans_nas(case):
    topo, plan, out = case
    addresses = agents.node_addresses(topo)
    ids = set()
    for a in out:
        if a.program != "ue":
            continue
        sub = plan.subscriber(a.node)
        cfg = a.config
        ids.add(cfg["ue_id"])
        assert cfg["address"] == str(addresses[sub.name])
        assert cfg["gnb"]["address"] == str(plan.gnb(sub.gnb).address)
        assert nas.decode(bytes.fromhex(cfg["registration"])) == nas.RegistrationRequest(sub.supi, sub.nssai)
        assert [s["tun"] for s in cfg["sessions"]] == [s.tun for s in sub.sessions]
        for entry, s in zip(cfg["sessions"], sub.sessions):
            assert nas.decode(bytes.fromhex(entry["request"])) == nas.SessionRequest(s.psi, s.psi, s.snssai, s.dnn)
    assert len(ids) == len(plan.subscribers) and 0 not in ids


def test_routes_send_each_granted_service_through_its_slices_session(case):
    topo, plan, out = case
    addresses = agents.node_addresses(topo)
    policy = compile_policy(topo)
    for a in out:
        if a.program != "ue":
            continue
        sub = plan.subscriber(a.node)
        routed = {r: e["slice"] for e in a.config["sessions"] for r in e["routes"]}
        wanted = {f"{addresses[g.dst]}/32" for g in policy.grants if g.src == sub.name and g.slice != "infra"}
        assert set(routed) == wanted
        for dest, sl in routed.items():  # the session that carries a destination is one whose slice grants it
            assert any(g.slice == sl and f"{addresses[g.dst]}/32" == dest for g in policy.grants if g.src == sub.name)
        all_routes = [r for e in a.config["sessions"] for r in e["routes"]]
        assert len(all_routes) == len(set(all_routes))


def test_gnb_configs_name_their_ues_and_the_plans_dl_teids(case):
    _topo, plan, out = case
    for a in out:
        if a.program != "gnb":
            continue
        g = plan.gnb(a.node)
        cfg = a.config
        assert (cfg["address"], cfg["gnb_id"], cfg["nci"], cfg["tac"], cfg["plmn"]) == (
            str(g.address), g.gnb_id, g.nci, g.tac, plan.plmn)
        assert cfg["amf"]["address"] == str(plan.core.address)
        mine = [s for s in plan.subscribers if s.gnb == g.name]
        assert [u["name"] for u in cfg["ues"]] == [s.name for s in mine]
        for u, sub in zip(cfg["ues"], mine):
            assert u["dl_teids"] == {str(s.psi): s.dl_teid for s in sub.sessions}
        assert cfg["dscp_by_fiveqi"] == {str(s.fiveqi): s.dscp for s in plan.slices}


def test_upf_configs_serve_their_sessions(case):
    _topo, plan, out = case
    for a in out:
        if a.program != "upf":
            continue
        mine = [s for s in plan.sessions if s.upf == a.node]
        assert a.config["smf"] == [str(plan.core.address)]
        assert set(a.config["gnbs"]) == {str(plan.gnb(s.gnb).address) for s in mine}
        assert set(a.config["pools"]) == {str(s.pool) for s in mine}


def test_the_core_gets_the_whole_plan(case):
    _topo, plan, out = case
    core = next(a for a in out if a.program == "amf")
    assert core.node == plan.core.name and core.config["address"] == str(plan.core.address)
    assert plan_from_dict(json.loads(json.dumps(core.config["plan"]))) == plan


def test_servers_route_pools_back_through_the_serving_upf(minimal: Topology, minimal_plan: RanPlan):
    routes = agents.server_routes(minimal, minimal_plan)
    upf = str(minimal_plan.upfs[0].address)
    assert routes == {"emr": sorted([("10.45.0.0/20", upf), ("10.45.16.0/20", upf)]),
                      "pacs": [("10.45.0.0/20", upf)]}


def test_a_pool_split_between_upfs_gets_host_routes():
    """The clinical slice: ue-1 through the MEC UPF at its clinic, ue-2 through the central one."""
    topo = mec_topology()
    plan = ran_plan(topo, upfs=[UpfBinding("upf-central"), UpfBinding("upf-edge", ("clinical",), ("clinic-1",))])
    by_ue = {s.ue: s for s in plan.sessions if s.slice == "clinical"}
    assert by_ue["ue-1"].upf == "upf-edge" and by_ue["ue-2"].upf == "upf-central"
    routes = dict(agents.server_routes(topo, plan))["emr"]
    assert (f"{by_ue['ue-1'].address}/32", str(plan.upf("upf-edge").address)) in routes
    assert (f"{by_ue['ue-2'].address}/32", str(plan.upf("upf-central").address)) in routes
    assert not any(IPv4Network(d).prefixlen < 32 and IPv4Address(by_ue["ue-1"].address) in IPv4Network(d)
                   for d, _via in routes)
