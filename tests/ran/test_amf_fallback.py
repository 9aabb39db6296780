"""The core's side of the MEC fallback, without sockets: which sessions move where, in which order (N4 to
the new UPF first, then the gNB's NGAP modify, then the old UPF lets go), and what a refused move leaves."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from testbed.ran import ngap, uenas
from testbed.ran.agents import session_entry
from testbed.ran.amf import Amf, AmfSession, AmfUe
from testbed.ran.daemon import Loop, StatusFile
from testbed.ran.plan import ran_plan
from testbed.ran.planfile import plan_to_dict
from tests.ran.conftest import mec_topology


@pytest.fixture
def core(tmp_path):
    plan = ran_plan(mec_topology())
    loop = Loop()
    amf = Amf({"address": str(plan.core.address), "plan": plan_to_dict(plan)}, lambda *a, **k: None,
              StatusFile(str(tmp_path / "core.json")), loop)
    calls: list[tuple] = []
    answers: dict[str, dict] = {}

    def request(upf, req):
        calls.append(("n4", upf, req["op"], req.get("gnb"), req.get("dl_teid")))
        return answers.get(upf, {"ok": True})

    amf.smf.request = request
    amf.n2.send = lambda peer, pdu: calls.append(("ngap", peer.name, ngap.decode(pdu)))
    ue_plan = plan.subscriber("ue-1")
    ue = AmfUe(1, 7, SimpleNamespace(name="gnb-1"), ue_plan.supi, "ue-1")
    for s in ue_plan.sessions:
        sess = AmfSession(s, s.upf, str(plan.upf(s.upf).address), 0.0)
        sess.dl_teid, sess.gnb, sess.state = s.dl_teid, str(plan.gnb("gnb-1").address), "active"
        ue.sessions[s.psi] = sess
    amf.ues[1] = ue
    yield SimpleNamespace(amf=amf, plan=plan, ue=ue, calls=calls, answers=answers)
    loop.close()


def _edge(c):
    return next(s for s in c.ue.sessions.values() if s.session.upf == "upf-edge")


def test_a_lost_mec_upfs_session_moves_to_the_central_upf_and_comes_home(core):
    c = core
    edge, central = _edge(c), c.plan.upf("upf-central")
    c.amf.smf.upf_state["upf-edge"] = "lost"
    c.amf.upf_changed("upf-edge", False)
    n4 = [x for x in c.calls if x[0] == "n4"]
    assert n4 == [("n4", "upf-central", "establish", edge.gnb, edge.dl_teid)]  # no delete to the lost UPF
    [(_, gnb, msg)] = [x for x in c.calls if x[0] == "ngap"]
    assert gnb == "gnb-1" and msg.procedure == "PDUSessionResourceModifyRequest"
    [item] = msg.sessions
    assert (item.psi, item.ul.address, item.ul.teid) == (edge.session.psi, central.address, edge.session.ul_teid)
    assert (item.dl.teid, str(item.dl.address)) == (edge.dl_teid, edge.gnb)  # the downlink tunnel is kept
    assert edge.upf == "upf-central" and edge.moves[-1]["to"] == "upf-central"
    other = next(s for s in c.ue.sessions.values() if s is not edge)
    assert other.upf == "upf-central" and not other.moves  # already central: not moved
    c.calls.clear()
    c.amf.smf.upf_state["upf-edge"] = "associated"
    c.amf.upf_changed("upf-edge", True)
    assert [x[:3] for x in c.calls] == [("n4", "upf-edge", "establish"), ("ngap", "gnb-1", c.calls[1][2]),
                                        ("n4", "upf-central", "delete")]  # make before break
    assert c.calls[1][2].sessions[0].ul.address == c.plan.upf("upf-edge").address
    assert edge.upf == "upf-edge" and [m["to"] for m in edge.moves] == ["upf-central", "upf-edge"]


def test_a_refused_move_leaves_the_session_where_it_was_and_counts(core):
    c = core
    c.answers["upf-central"] = {"ok": False, "error": "session table full"}
    c.amf.smf.upf_state["upf-edge"] = "lost"
    c.amf.upf_changed("upf-edge", False)
    edge = _edge(c)
    assert edge.upf == "upf-edge" and not edge.moves
    assert not [x for x in c.calls if x[0] == "ngap"]  # the gNB is not told of a move that did not happen
    assert c.amf.counters["session_move_failures"] == 1
    # the periodic check tries again: once the fallback takes it, the session moves
    del c.answers["upf-central"]
    assert c.amf.reconcile("periodic") == 1
    assert edge.upf == "upf-central" and c.amf.counters["session_move_failures"] == 1


def test_a_session_stranded_by_both_upfs_lost_moves_when_its_fallback_answers_again(core):
    c = core
    edge = _edge(c)
    c.amf.smf.upf_state["upf-central"] = "lost"
    c.amf.upf_changed("upf-central", False)
    c.amf.smf.upf_state["upf-edge"] = "lost"
    c.amf.upf_changed("upf-edge", False)
    assert edge.upf == "upf-edge" and not [x for x in c.calls if x[0] == "n4"]  # nowhere to go
    c.amf.smf.upf_state["upf-central"] = "associated"
    c.amf.upf_changed("upf-central", True)
    assert [x[:3] for x in c.calls][:2] == [("n4", "upf-central", "establish"), ("ngap", "gnb-1", c.calls[1][2])]
    assert edge.upf == "upf-central" and edge.moves[-1]["reason"] == "UPF upf-central answers again"
    assert c.amf.reconcile("periodic") == 0  # where it belongs: nothing more to do


def _request_edge_session(c):
    edge = _edge(c)
    c.ue.sessions.pop(edge.session.psi)
    gnb = c.plan.gnb("gnb-1")
    nas_pdu = bytes.fromhex(session_entry(edge.session, [])["request"])
    c.amf.n2_UplinkNASTransport(c.ue.peer, ngap.decode(ngap.uplink_nas_transport(1, 7, nas_pdu, c.plan.plmn,
                                                                                 gnb.nci, gnb.tac)))
    return edge


def test_a_session_its_mec_upf_cannot_take_is_set_up_at_the_fallback_and_comes_home(core):
    c = core
    c.answers["upf-edge"] = {"ok": False, "error": "N4 to upf-edge: timed out"}
    edge = _request_edge_session(c)
    assert [x[1:3] for x in c.calls if x[0] == "n4"] == [("upf-edge", "establish"), ("upf-central", "establish")]
    sess = c.ue.sessions[edge.session.psi]
    assert sess.upf == "upf-central"
    [move] = sess.moves  # recorded as a move at set-up, so the network follows it like any other
    assert (move["from"], move["to"]) == ("upf-edge", "upf-central") and "timed out" in move["reason"]


def test_a_session_no_upf_can_take_is_rejected_with_a_back_off_timer(core):
    c = core
    c.answers["upf-edge"] = {"ok": False, "error": "N4 to upf-edge: timed out"}
    c.answers["upf-central"] = {"ok": False, "error": "N4 to upf-central: timed out"}
    edge = _request_edge_session(c)
    [(_, _, msg)] = [x for x in c.calls if x[0] == "ngap"]
    reject = uenas.decode(msg.nas)
    assert (reject.psi, reject.cause, reject.backoff_s) == (edge.session.psi, 26, 2)
    assert edge.session.psi not in c.ue.sessions


def test_a_session_set_up_while_its_mec_upf_is_lost_goes_to_the_fallback(core):
    c = core
    c.amf.smf.upf_state["upf-edge"] = "lost"
    edge = _edge(c)
    c.ue.sessions.pop(edge.session.psi)
    gnb = c.plan.gnb("gnb-1")
    nas = bytes.fromhex(session_entry(edge.session, [])["request"])  # what the UE sends for it
    request = ngap.decode(ngap.uplink_nas_transport(1, 7, nas, c.plan.plmn, gnb.nci, gnb.tac))
    c.amf.n2_UplinkNASTransport(c.ue.peer, request)
    assert ("n4", "upf-central", "establish", None, None) in c.calls
    assert c.ue.sessions[edge.session.psi].upf == "upf-central"
