"""N2 and N4 of the built-in emulation, without a network: NGAP procedures, N2 framing, N4 lines, the plan file."""
from __future__ import annotations

import json
import socket
from ipaddress import IPv4Address

import pytest

from testbed.ran import n2, n4, nas, ngap
from testbed.ran.plan import RanPlan, Snssai
from testbed.ran.planfile import plan_from_dict, plan_to_dict

SLICES = (Snssai(1, "000001"), Snssai(3))


def test_ng_setup_round_trip():
    req = ngap.decode(ngap.ng_setup_request(7, "46000", 1, SLICES, "gnb-clinic"))
    assert (req.procedure, req.gnb_id, req.plmn, req.tac, req.name, req.slices) == (
        "NGSetupRequest", 7, "46000", 1, "gnb-clinic", SLICES)
    resp = ngap.decode(ngap.ng_setup_response("5gc-amf", "46000", 2, 1, 0, SLICES))
    assert (resp.procedure, resp.name, resp.plmn, resp.slices) == ("NGSetupResponse", "5gc-amf", "46000", SLICES)
    fail = ngap.decode(ngap.ng_setup_failure())
    assert (fail.procedure, fail.cause) == ("NGSetupFailure", "misc/unknown-PLMN-or-SNPN")


def test_nas_transports_round_trip():
    reject = nas.registration_reject(7)
    down = ngap.decode(ngap.downlink_nas_transport(5, 9, reject))
    assert (down.procedure, down.amf_ue_id, down.ran_ue_id, down.nas) == ("DownlinkNASTransport", 5, 9, reject)
    up = ngap.decode(ngap.uplink_nas_transport(5, 9, b"\x7e\x00\x67", "46000", 0x10, 3))
    assert (up.procedure, up.amf_ue_id, up.ran_ue_id, up.nas, up.plmn, up.nci, up.tac) == (
        "UplinkNASTransport", 5, 9, b"\x7e\x00\x67", "46000", 0x10, 3)


def test_setup_response_from_what_the_gnb_knows(minimal_plan: RanPlan):
    """setup_response_tunnels (the gNB's) and setup_response (from plan sessions) encode the same bytes."""
    sub = minimal_plan.subscribers[0]
    gnb = minimal_plan.gnb(sub.gnb).address
    by_plan = ngap.setup_response(3, 4, [(s, gnb) for s in sub.sessions])
    by_gnb = ngap.setup_response_tunnels(3, 4, [(s.psi, s.qfi, ngap.Tunnel(gnb, s.dl_teid)) for s in sub.sessions])
    assert by_plan == by_gnb


def test_broken_aper_is_a_value_error():
    with pytest.raises(ValueError):
        ngap.decode(b"\x00\x15\xff")


def test_tcp_fallback_frames_each_pdu_with_its_length():
    a, b = socket.socketpair()
    try:
        tx, rx = n2.Conn(a, n2.TCP, ("gnb", 0)), n2.Conn(b, n2.TCP, ("amf", 0))
        pdus = [ngap.ng_setup_failure(), b"x" * 3000, ngap.downlink_nas_transport(1, 2, b"\x7e\x00\x44\x07")]
        for p in pdus:
            tx.send(p)
        got: list[bytes] = []
        while len(got) < len(pdus):
            got += rx.receive()
        assert got == pdus
        a.sendall(b"\x00\x00")  # half a length prefix: nothing yet
        assert rx.receive() == []
        a.sendall(b"\x00\x02hi")
        assert rx.receive() == [b"hi"]
        a.close()
        assert rx.receive() is None
    finally:
        a.close()
        b.close()


def test_an_oversized_frame_is_refused():
    a, b = socket.socketpair()
    try:
        a.sendall((n2.MAX_PDU + 1).to_bytes(4, "big"))
        with pytest.raises(n2.N2Error):
            n2.Conn(b, n2.TCP, ("peer", 0)).receive()
    finally:
        a.close()
        b.close()


def test_transport_choice_follows_the_kernel():
    have = n2.sctp_available()
    assert n2.choose("auto") == (n2.SCTP if have else n2.TCP)
    assert n2.choose("tcp") == n2.TCP
    if not have:
        with pytest.raises(OSError, match="no SCTP"):
            n2.choose("sctp")


def test_n4_lines():
    r = n4.LineReader()
    assert r.feed(n4.encode({"op": "association"})[:5]) == []
    assert r.feed(n4.encode({"op": "association"})[5:] + b"\n" + n4.encode({"op": "report"})) == [
        {"op": "association"}, {"op": "report"}]
    with pytest.raises(n4.N4Error):
        n4.LineReader().feed(b"[1, 2]\n")
    with pytest.raises(n4.N4Error):
        n4.LineReader().feed(b"x" * (n4.MAX_LINE + 1))


@pytest.mark.parametrize("which", ["minimal_plan", "reference_plan"])
def test_the_plan_survives_json(which, request):
    plan: RanPlan = request.getfixturevalue(which)
    assert plan_from_dict(json.loads(json.dumps(plan_to_dict(plan)))) == plan


def test_a_plan_file_of_another_format_is_refused(minimal_plan: RanPlan):
    doc = plan_to_dict(minimal_plan)
    doc["format"] = 99
    with pytest.raises(ValueError, match="format"):
        plan_from_dict(doc)
    doc = plan_to_dict(minimal_plan)
    doc["core"]["address"] = 42
    with pytest.raises(ValueError):
        plan_from_dict(doc)


def test_tunnel_addresses_are_ipv4(minimal_plan: RanPlan):
    s = minimal_plan.sessions[0]
    msg = ngap.decode(ngap.setup_request(1, 2, [(s, b"", IPv4Address("10.77.0.253"))]))
    assert msg.sessions[0].ul == ngap.Tunnel(IPv4Address("10.77.0.253"), s.ul_teid)
