"""The 5G plan: defaults from the file, unique tunnels and addresses, UPF selection (central and MEC)."""
from __future__ import annotations

import itertools
from ipaddress import IPv4Network

import pytest

from testbed.ran.plan import DEFAULT_UE_POOL, RanPlan, RanPlanError, Snssai, ran_plan, subscriber_keys
from testbed.ran.upfs import UpfBinding
from testbed.slicing.flows import fiveqi_dscp
from testbed.slicing.policy import INFRA, compile_policy
from testbed.topology.model import Topology
from tests.ran.conftest import mec_topology


def _ue_names(topo: Topology) -> list[str]:
    return [n.name for n in topo.nodes if n.kind == "ue"]


@pytest.mark.parametrize("which", ["reference", "minimal"])
def test_every_ue_has_one_session_per_slice_it_is_a_member_of(which, request):
    topo = request.getfixturevalue(which)
    plan = request.getfixturevalue(f"{which}_plan")
    members = compile_policy(topo).members
    assert [s.name for s in plan.subscribers] == _ue_names(topo)
    for sub in plan.subscribers:
        expected = [sl for sl, ms in members.items() if sl != INFRA and sub.name in ms]
        assert [s.slice for s in sub.sessions] == expected, sub.name
        assert sub.sessions, f"{sub.name} has no session"
        assert [s.tun for s in sub.sessions] == [f"uesimtun{i}" for i in range(len(sub.sessions))]
        assert [s.psi for s in sub.sessions] == list(range(1, len(sub.sessions) + 1))


@pytest.mark.parametrize("which", ["reference", "minimal"])
def test_pools_are_disjoint_and_outside_the_node_pool(which, request):
    topo = request.getfixturevalue(which)
    plan: RanPlan = request.getfixturevalue(f"{which}_plan")
    nets = [p.network for p in plan.pools]
    assert all(n.subnet_of(DEFAULT_UE_POOL) for n in nets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(nets, 2))
    assert not any(n.overlaps(topo.defaults.addressing.pool) for n in nets)
    assert len({(p.slice, p.dnn) for p in plan.pools}) == len(plan.pools)


@pytest.mark.parametrize("which", ["reference", "minimal"])
def test_addresses_and_teids_are_unique(which, request):
    plan: RanPlan = request.getfixturevalue(f"{which}_plan")
    sessions = plan.sessions
    addresses = [s.address for s in sessions]
    assert len(set(addresses)) == len(addresses)
    for s in sessions:
        pool = plan.pool(s.slice, s.dnn)
        assert s.address in pool.network and s.address != pool.gateway and s.pool == pool.network
    teids = [s.ul_teid for s in sessions] + [s.dl_teid for s in sessions]
    assert len(set(teids)) == len(teids) and 0 not in teids and max(teids) < 2**32
    for upf in plan.upfs:  # what the spec asks: unique per endpoint
        ul = [s.ul_teid for s in sessions if s.upf == upf.name]
        assert len(set(ul)) == len(ul)
    for gnb in plan.gnbs:
        dl = [s.dl_teid for s in sessions if s.gnb == gnb.name]
        assert len(set(dl)) == len(dl)


def test_reference_plan_follows_the_file(reference, reference_plan):
    """The file's bindings (gNB, SUPI) are kept; its sessions match the default; DNN = slice name."""
    for b in reference.ran.ues:
        sub = reference_plan.subscriber(b.ue)
        assert sub.gnb == b.gnb and sub.supi == b.supi
        assert [s.slice for s in sub.sessions] == [s.slice for s in b.sessions]
        assert all(s.dnn == s.slice for s in sub.sessions)
    assert [(u.name, u.role) for u in reference_plan.upfs] == [("upf-01", "central"), ("upf-mec-city", "mec")]
    # local breakout: the imaging slice (the MEC cache beside the city aggregation UPF) at the city ring's units
    city = {"branch-north", "branch-east", "chc-01", "clinic-01"}
    site = {g.name: g.site for g in reference_plan.gnbs}
    for s in reference_plan.sessions:
        mec = s.slice == "imaging" and site[s.gnb] in reference_plan.upf("upf-mec-city").sites
        assert s.upf == ("upf-mec-city" if mec else "upf-01"), s
    assert city <= set(reference_plan.upf("upf-mec-city").sites)
    assert not {"xiangtan-county", "shaoshan", "xch-dc"} & set(reference_plan.upf("upf-mec-city").sites)
    assert reference_plan.core.name == "5gc" and reference_plan.core.address in reference.defaults.addressing.pool
    slices = {s.name: s for s in reference.slices}
    for s in reference_plan.sessions:
        sl = slices[s.slice]
        assert s.snssai == Snssai(sl.sst, sl.sd) and s.fiveqi == sl.fiveqi and s.dscp == fiveqi_dscp(sl.fiveqi)
        assert s.qfi == 1
    tablet = reference_plan.subscriber("dr-tablet-01").sessions
    assert [s.snssai for s in tablet] == [Snssai(1, "000001"), Snssai(1, "000002")]


def test_minimal_plan_adds_an_implicit_central_upf(minimal, minimal_plan):
    """minimal.yaml has no UPF node: the plan names one (and the core) with free addresses of the node pool."""
    (upf,) = minimal_plan.upfs
    assert upf.implicit and upf.role == "central" and upf.name not in {n.name for n in minimal.nodes}
    assert minimal_plan.core.name != "core"  # minimal.yaml has a switch called core
    assert upf.address in minimal.defaults.addressing.pool
    assert upf.address != minimal_plan.core.address
    assert all(s.upf == upf.name for s in minimal_plan.sessions)


def test_supis_default_from_the_plmn_and_skip_explicit_ones():
    topo = mec_topology(ran="ran:\n  plmn: {mcc: '001', mnc: '010'}\n"
                            "  ues: [{ue: ue-2, gnb: gnb-2, supi: imsi-001010000000001}]")
    plan = ran_plan(topo)
    assert plan.subscriber("ue-2").supi == "imsi-001010000000001"
    assert plan.subscriber("ue-1").supi == "imsi-001010000000002"  # msin 1 is taken
    assert all(len(s.imsi) == 15 for s in plan.subscribers)


def test_keys_are_reproducible_per_seed_and_differ_between_seeds(mec):
    a, b, c = ran_plan(mec, seed="3fa2"), ran_plan(mec, seed="3fa2"), ran_plan(mec, seed="77aa")
    assert [s.key for s in a.subscribers] == [s.key for s in b.subscribers]
    assert [s.key for s in a.subscribers] != [s.key for s in c.subscribers]
    k, opc = subscriber_keys("imsi-460000000000001", "x")
    assert len(k) == len(opc) == 32 and k != opc and int(k, 16) >= 0


def test_a_binding_can_override_sessions_and_dnn(mec):
    topo = mec_topology(ran="ran:\n  ues: [{ue: ue-1, gnb: gnb-2, sessions: [{slice: imaging, dnn: pacs}]}]")
    sub = ran_plan(topo).subscriber("ue-1")
    assert sub.gnb == "gnb-2"
    assert [(s.slice, s.dnn) for s in sub.sessions] == [("imaging", "pacs")]


def test_default_mec_binding_breaks_out_the_mec_slices_at_its_site(mec):
    """upf-edge sits at clinic-1 beside the MEC cache: imaging at clinic-1 goes there, the rest stays central."""
    plan = ran_plan(mec)
    edge = plan.upf("upf-edge")
    assert (edge.role, edge.sites, edge.slices) == ("mec", ("clinic-1",), ("imaging",))
    assert plan.upf("upf-central").role == "central"
    served = {(s.ue, s.slice): s.upf for s in plan.sessions}
    assert served == {("ue-1", "clinical"): "upf-central", ("ue-1", "imaging"): "upf-edge",
                      ("ue-2", "clinical"): "upf-central", ("ue-2", "imaging"): "upf-central"}


def test_a_mec_upfs_sessions_name_the_central_upf_that_would_take_them(mec):
    plan = ran_plan(mec)
    fallback = {(s.ue, s.slice): s.fallback_upf for s in plan.sessions}
    assert fallback == {("ue-1", "clinical"): None, ("ue-1", "imaging"): "upf-central",
                        ("ue-2", "clinical"): None, ("ue-2", "imaging"): None}  # central sessions have none
    from testbed.ran.planfile import plan_from_dict, plan_to_dict

    assert plan_from_dict(plan_to_dict(plan)) == plan  # the core sees it too
    # the central UPF serves clinical only: the MEC's imaging sessions have nowhere to fall back to
    narrow = ran_plan(mec, upfs=[UpfBinding("upf-edge", ("imaging",), ("clinic-1", "clinic-2")),
                                 UpfBinding("upf-central", ("clinical",))])
    assert {(s.upf, s.fallback_upf) for s in narrow.sessions if s.slice == "imaging"} == {("upf-edge", None)}


def test_a_siteless_mec_upf_serves_the_sites_nearer_to_it():
    topo = mec_topology(extra_nodes="- {name: upf-agg, kind: upf}", extra_links="- {endpoints: [upf-agg, sw-2]}")
    plan = ran_plan(topo)
    assert plan.upf("upf-agg").sites == ("clinic-2",)
    assert {s.upf for s in plan.sessions if s.gnb == "gnb-2"} == {"upf-agg"}


def test_explicit_upf_bindings_win(mec):
    plan = ran_plan(mec, upfs=[UpfBinding("upf-central"), UpfBinding("upf-edge", sites=("clinic-1",))])
    assert {s.upf for s in plan.sessions if s.gnb == "gnb-1"} == {"upf-edge"}
    assert {s.upf for s in plan.sessions if s.gnb == "gnb-2"} == {"upf-central"}
    plan = ran_plan(mec, upfs=[UpfBinding("upf-central"), UpfBinding("upf-edge", slices=("imaging",))])
    assert {s.upf for s in plan.sessions if s.slice == "imaging"} == {"upf-edge"}
    assert {s.upf for s in plan.sessions if s.slice == "clinical"} == {"upf-central"}


def test_bad_upf_bindings_are_reported(mec):
    with pytest.raises(RanPlanError) as err:
        ran_plan(mec, upfs=[UpfBinding("emr"), UpfBinding("upf-edge", slices=("nope",), sites=("mars",))])
    text = str(err.value)
    assert "'emr' is not a UPF node" in text and "unknown slice 'nope'" in text and "unknown site 'mars'" in text


def test_an_unserved_session_is_an_error(mec):
    with pytest.raises(RanPlanError, match="no UPF serves slice"):
        ran_plan(mec, upfs=[UpfBinding("upf-edge", sites=("clinic-1",))])


def test_ue_pool_overlapping_the_node_pool_is_an_error(mec):
    with pytest.raises(RanPlanError, match="overlaps the nodes' pool") as exc:
        ran_plan(mec, ue_pool=IPv4Network("10.77.0.0/16"))
    # the file wrote only the nodes' pool: that is the one to move, to a pool clear of the UEs'
    assert "choose the nodes' pool outside 10.77.0.0/16 (e.g. 10.78.0.0/16)" in str(exc.value)


def test_an_overlapping_ran_pool_is_blamed_at_its_own_line_with_a_pool_that_fits():
    """A tester's file set `ran: {pool: 10.77.0.0/16}` over the default node pool: the error named line 1 and
    defaults.addressing.pool (not in the file), and suggested the very pool that overlapped."""
    import textwrap

    from tests.ran.conftest import MEC_TOPOLOGY, mec_topology

    ran = "ran: {pool: 10.77.0.0/16}"
    topo = mec_topology(ran=ran)
    text = textwrap.dedent(MEC_TOPOLOGY % {"extra_nodes": "", "extra_links": "", "ran": ran})
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(ran))
    with pytest.raises(RanPlanError) as exc:
        ran_plan(topo)
    assert (f"mec-alliance.yaml:{line} ran.pool: the UEs' PDU session pool 10.77.0.0/16 overlaps the nodes' pool "
            "10.77.0.0/24; choose ran.pool outside 10.77.0.0/24 (e.g. 10.45.0.0/16)") in str(exc.value)


def test_pools_split_the_ue_pool_in_equal_blocks(mec):
    plan = ran_plan(mec, ue_pool=IPv4Network("172.20.0.0/16"))
    assert [str(p.network) for p in plan.pools] == ["172.20.0.0/20", "172.20.16.0/20"]
    assert [str(p.gateway) for p in plan.pools] == ["172.20.0.1", "172.20.16.1"]


def test_a_ue_without_a_gnb_at_its_site_is_an_error():
    topo = mec_topology(extra_nodes="- {name: ue-dc, kind: ue, site: dc}", extra_links="- {endpoints: [ue-dc, core]}")
    with pytest.raises(RanPlanError, match="'ue-dc' has no gNB at its site"):
        ran_plan(topo)


def test_a_supi_of_another_plmn_is_an_error():
    topo = mec_topology(ran="ran:\n  ues: [{ue: ue-1, gnb: gnb-1, supi: imsi-001010000000001}]")
    with pytest.raises(RanPlanError, match="not of the PLMN 46000") as err:
        ran_plan(topo)
    assert err.value.problems[0].line is not None  # located in the file


def test_gnbs_get_distinct_cell_identities(reference_plan):
    ncis = [g.nci for g in reference_plan.gnbs]
    assert len(set(ncis)) == len(ncis) and all(0 < n < 2**36 for n in ncis)
    assert reference_plan.gnb("gnb-main-campus").nci == 0x10  # gNB id 1, cell 0: UERANSIM's sample value
    assert reference_plan.gnb("gnb-branch-north").nci == 0x20
