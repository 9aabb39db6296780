"""NGAP encodings: the tunnels a PDU session set-up carries are the plan's, after an APER round trip."""
from __future__ import annotations

from testbed.ran import nas, ngap
from testbed.ran.plan import RanPlan


def test_initial_ue_message_carries_the_registration_and_the_cell(reference_plan: RanPlan):
    sub = reference_plan.subscriber("dr-tablet-03")
    gnb = reference_plan.gnb(sub.gnb)
    reg = nas.registration_request(sub.supi, sub.nssai)
    msg = ngap.decode(ngap.initial_ue_message(42, reg, reference_plan.plmn, gnb.nci, gnb.tac))
    assert (msg.procedure, msg.ran_ue_id, msg.plmn, msg.nci, msg.tac) == (
        "InitialUEMessage", 42, reference_plan.plmn, gnb.nci, gnb.tac)
    assert nas.decode(msg.nas) == nas.RegistrationRequest(sub.supi, sub.nssai)


def test_session_setup_request_carries_the_ul_tunnel_at_the_upf(reference_plan: RanPlan):
    sub = reference_plan.subscriber("dr-tablet-01")
    items = []
    for s in sub.sessions:
        accept = nas.session_accept(s.psi, 1, s.address, s.qfi, s.fiveqi, s.snssai, s.dnn)
        items.append((s, nas.dl_nas_transport(accept, s.psi), reference_plan.upf(s.upf).address))
    msg = ngap.decode(ngap.setup_request(7, 42, items))
    assert (msg.procedure, msg.amf_ue_id, msg.ran_ue_id) == ("PDUSessionResourceSetupRequest", 7, 42)
    assert len(msg.sessions) == len(sub.sessions)
    for got, s in zip(msg.sessions, sub.sessions):
        assert (got.psi, got.snssai, got.qfi, got.fiveqi) == (s.psi, s.snssai, s.qfi, s.fiveqi)
        assert got.ul == ngap.Tunnel(reference_plan.upf(s.upf).address, s.ul_teid)
        assert nas.decode(got.nas).address == s.address


def test_session_setup_response_carries_the_dl_tunnel_at_the_gnb(reference_plan: RanPlan):
    sub = reference_plan.subscriber("dr-tablet-01")
    gnb = reference_plan.gnb(sub.gnb)
    msg = ngap.decode(ngap.setup_response(7, 42, [(s, gnb.address) for s in sub.sessions]))
    assert msg.procedure == "PDUSessionResourceSetupResponse"
    assert [(x.psi, x.dl, x.qfi) for x in msg.sessions] == [
        (s.psi, ngap.Tunnel(gnb.address, s.dl_teid), s.qfi) for s in sub.sessions]


def test_the_plmn_is_packed_as_ts_24008_says():
    assert ngap._plmn_bytes("46000") == bytes.fromhex("64f000")
    assert ngap._plmn_bytes("310410") == bytes.fromhex("130014")
    assert ngap._plmn_str(bytes.fromhex("130014")) == "310410"
