"""The built-in emulation's wire formats without a network: RLS framing, GTP-U encapsulation, the UE's NAS reader.

GTP-U is checked against an independent dissector (Scapy's scapy.contrib.gtp),
and the UE's pycrate-free NAS reader against pycrate's encodings (testbed.ran.nas).
"""
from __future__ import annotations

import struct
from binascii import unhexlify
from ipaddress import IPv4Address

import pytest

from testbed.ran import gtpu, nas, rls, uenas
from testbed.ran.plan import Snssai
from tests.ran.test_ran_nas import PYCRATE_DL_TRANSPORT, PYCRATE_REG_ACCEPT, PYCRATE_REG_REJECT, PYCRATE_SESSION_ACCEPT

INNER = bytes.fromhex("4500001c00010000400100000a2d00020a4d000108000000000000000000")  # an IPv4 header + ICMP


# ---------------------------------------------------------------- RLS

@pytest.mark.parametrize("kind", [rls.HEARTBEAT, rls.HEARTBEAT_ACK, rls.NAS, rls.DATA, rls.RELEASE])
def test_rls_round_trip(kind):
    msg = rls.encode(kind, 0xDEADBEEF, b"payload", psi=3 if kind == rls.DATA else 0)
    assert msg[:4] == bytes([0x03, kind, 3 if kind == rls.DATA else 0, 0]) and len(msg) == rls.HEADER_LEN + 7
    hdr, payload = rls.decode(msg)
    assert hdr == rls.Header(kind, 3 if kind == rls.DATA else 0, 0xDEADBEEF) and payload == b"payload"


def test_rls_header_in_place_leaves_the_payload_alone():
    buf = bytearray(b"\0" * rls.HEADER_LEN + INNER)
    rls.pack_header(buf, 0, rls.DATA, 7, psi=2)
    assert rls.parse(buf) == rls.Header(rls.DATA, 2, 7) and bytes(buf[rls.HEADER_LEN:]) == INNER


@pytest.mark.parametrize("bad, why", [(b"\x03\x04\x01", "shorter"), (b"\x02\x04\x01\x00\0\0\0\1", "not RLS"),
                                      (b"\x03\x09\x00\x00\0\0\0\1", "unknown RLS message type")])
def test_rls_rejects_what_is_not_rls(bad, why):
    with pytest.raises(rls.RlsError, match=why):
        rls.parse(bad)


# ---------------------------------------------------------------- GTP-U

def test_gpdu_header_is_the_documented_16_octets():
    hdr = gtpu.header(0x10000002, 5, len(INNER), uplink=True)
    assert hdr == struct.pack("!BBHIHBBBBBB", 0x34, 0xFF, len(INNER) + 8, 0x10000002, 0, 0, 0x85, 1, 0x10, 5, 0)
    dl = gtpu.header(0x20000002, 5, len(INNER), uplink=False)
    assert dl[13] == 0x00 and dl[14] == 5  # DL PDU SESSION INFORMATION, QFI


def test_template_then_length_in_place_equals_the_full_header():
    buf = bytearray(gtpu.template(0x20000001, 1, uplink=False) + INNER)
    gtpu.set_length(buf, 0, len(INNER))
    assert bytes(buf) == gtpu.encapsulate(0x20000001, 1, INNER, uplink=False)


def test_parse_reads_back_our_gpdu():
    p = gtpu.parse(gtpu.encapsulate(0x10000001, 9, INNER, uplink=True))
    assert p == gtpu.Parsed(gtpu.G_PDU, 0x10000001, 16, len(INNER), 9, None)


def test_parse_walks_other_header_shapes():
    plain = struct.pack("!BBHI", 0x30, 0xFF, len(INNER), 77) + INNER  # no optional fields at all
    assert gtpu.parse(plain) == gtpu.Parsed(gtpu.G_PDU, 77, 8, len(INNER), None, None)
    # S flag with a sequence number, then two extension headers: UDP port (0x40) and a PDU Session Container
    exts = bytes([1, 0x08, 0x68, 0x85]) + bytes([2, 0x10, 0x07, 0, 0, 0, 0, 0x00])
    body = struct.pack("!HBB", 4242, 0, 0x40) + exts + INNER
    msg = struct.pack("!BBHI", 0x36, 0xFF, len(body), 78) + body
    assert gtpu.parse(msg) == gtpu.Parsed(gtpu.G_PDU, 78, 8 + 4 + len(exts), len(INNER), 7, 4242)
    assert gtpu.parse(msg + b"trailing padding").length == len(INNER)


@pytest.mark.parametrize("bad", [
    b"\x34\xff\x00",  # shorter than the mandatory header
    struct.pack("!BBHI", 0x54, 0xFF, 0, 1),  # version 2
    struct.pack("!BBHI", 0x34, 0xFF, 100, 1) + b"\0" * 8,  # length beyond the datagram
    struct.pack("!BBHI", 0x34, 0xFF, 8, 1) + bytes([0, 0, 0, 0x85, 0, 0, 0, 0]),  # extension of length 0
])
def test_parse_refuses_malformed_messages(bad):
    with pytest.raises(gtpu.GtpError):
        gtpu.parse(bad)


def test_echo_response_answers_the_request_sequence():
    req = gtpu.parse(gtpu.echo_request(513))
    assert (req.msg_type, req.seq) == (gtpu.ECHO_REQUEST, 513)
    resp = gtpu.echo_response(513)
    assert gtpu.parse(resp)[:2] == (gtpu.ECHO_RESPONSE, 0) and resp[-2:] == bytes([gtpu.IE_RECOVERY, 0])


def test_scapy_dissects_our_gpdu():
    """An independent dissector sees a version 1 G-PDU, our TEID, a PDU Session Container with the QFI, the inner IP."""
    from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
    from scapy.layers.inet import IP, UDP

    pkt = IP(bytes(IP(src="10.77.0.3", dst="10.77.0.253", tos=18 << 2) / UDP(sport=40000, dport=2152)
                   / gtpu.encapsulate(0x10000003, 1, INNER, uplink=True)))
    gtp = pkt[GTP_U_Header]
    assert (gtp.version, gtp.gtp_type, gtp.teid, gtp.E, gtp.next_ex) == (1, 255, 0x10000003, 1, 0x85)
    container = pkt[GTPPDUSessionContainer]
    assert (container.type, container.QFI) == (1, 1)
    assert pkt[IP].tos >> 2 == 18
    assert bytes(pkt[IP].payload[IP])[:len(INNER)] == INNER


# ---------------------------------------------------------------- the UE's NAS reader, against pycrate

A, B, C = Snssai(1, "000001"), Snssai(3), Snssai(2, "abcdef")


def test_registration_accept_and_reject():
    acc = uenas.decode(nas.registration_accept("46000", [1, 2], [A, B], 77, [C]))
    assert acc == uenas.RegistrationAccept(77, ("1/000001", "3"), ("2/abcdef",))
    assert uenas.decode(nas.registration_reject(nas.MmCause.SERVICES_NOT_ALLOWED)) == uenas.RegistrationReject(7)
    assert uenas.decode(nas.registration_reject(62, [A])) == uenas.RegistrationReject(62)


def test_session_accept_in_its_dl_nas_transport():
    accept = nas.session_accept(2, 5, IPv4Address("10.45.16.9"), 1, 7, A, "clinical")
    expected = uenas.SessionAccept(2, 5, IPv4Address("10.45.16.9"), 1, "1/000001", "clinical")
    assert uenas.decode(nas.dl_nas_transport(accept, 2)) == expected
    assert uenas.decode(accept) == expected  # bare 5GSM too


@pytest.mark.parametrize("cause", list(nas.SmCause))
def test_session_reject_causes(cause):
    msg = nas.dl_nas_transport(nas.session_reject(4, 9, cause), 4, mm_cause=90)
    assert uenas.decode(msg) == uenas.SessionReject(4, 9, int(cause), 90)


def test_known_good_captures_from_pycrate():
    acc = uenas.decode(unhexlify(PYCRATE_REG_ACCEPT))
    assert acc.tmsi == 0xC0E00010 and acc.allowed == ("10/abcdef",)
    assert uenas.decode(unhexlify(PYCRATE_REG_REJECT)) == uenas.RegistrationReject(7)
    sess = uenas.decode(unhexlify(PYCRATE_SESSION_ACCEPT))
    assert (sess.psi, sess.address, sess.dnn) == (5, IPv4Address("172.17.95.1"), "data1")
    protected = uenas.decode(unhexlify(PYCRATE_DL_TRANSPORT))  # integrity protected, not ciphered
    assert (protected.psi, protected.address, protected.dnn) == (6, IPv4Address("11.0.0.51"), "vision")


def test_cause_names_are_the_cores():
    """The UE and the core name a cause the same way, so their status files can be compared."""
    assert uenas.MM_CAUSES == {int(c): c.name.lower().replace("_", "-") for c in nas.MmCause}
    assert uenas.SM_CAUSES == {int(c): c.name.lower().replace("_", "-") for c in nas.SmCause}


def test_garbage_is_a_nas_error():
    for bad in (b"", b"\x7e\x00", b"\x99\x00\x42", b"\x7e\x02\x68\x01", b"\x7e\x00\x68\x01\xff\xff\x2e"):
        with pytest.raises(uenas.NasError):
            uenas.decode(bad)


def test_the_ue_side_imports_no_pycrate_and_no_pydantic():
    """A UE process stays small: importing testbed.ran.ue pulls in neither."""
    import subprocess
    import sys

    code = ("import sys, testbed.ran.ue; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('pycrate_mobile', 'pycrate_asn1dir', 'pycrate_core', 'pydantic', 'ruamel')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"


def test_a_gnb_imports_no_pydantic():
    """A gNB needs pycrate's NGAP, not the plan's pydantic model (testbed.ran.snssai): the reference topology
    starts 32 of them."""
    import subprocess
    import sys

    code = ("import sys, testbed.ran.gnb; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('pydantic', 'ruamel', 'testbed.topology')] + [m for m in sys.modules if m.startswith('testbed.topology')]"
            "; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- UDP segmentation bursts (loopback, no root)

def _receiver():
    import socket

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    return rx


def _drain(rx, count):
    return [rx.recv(70000) for _ in range(count)]


def _put(batch, sock, addr, data):
    batch.buf[batch.used:batch.used + len(data)] = data
    batch.push(sock, addr, len(data))


def test_a_burst_arrives_as_separate_datagrams():
    import socket

    from testbed.ran import gso

    rx = _receiver()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    try:
        batch = gso.Batch()
        sent = [bytes([i]) * 1416 for i in range(10)] + [b"short"]  # the short one ends the burst
        for d in sent:
            _put(batch, tx, None, d)
        assert batch.count == 0  # sent already: a shorter datagram closes a burst
        assert _drain(rx, len(sent)) == sent
        assert batch.datagrams == 11 and (batch.calls == 1 or not batch.gso)
    finally:
        rx.close()
        tx.close()


def test_a_burst_splits_where_destination_or_size_changes():
    import socket

    from testbed.ran import gso

    rx1, rx2 = _receiver(), _receiver()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        batch = gso.Batch(base=8)
        a, b = rx1.getsockname(), rx2.getsockname()
        _put(batch, tx, a, b"A" * 100)
        _put(batch, tx, a, b"B" * 100)
        _put(batch, tx, b, b"C" * 100)  # another destination: A and B leave first
        _put(batch, tx, b, b"D" * 300)  # longer than the burst's size: C leaves first
        for _ in range(gso.MAX_SEGMENTS + 3):  # more than one burst holds
            _put(batch, tx, a, b"E" * 10)
        batch.flush()
        assert _drain(rx1, 2) == [b"A" * 100, b"B" * 100]
        assert _drain(rx2, 2) == [b"C" * 100, b"D" * 300]
        assert _drain(rx1, gso.MAX_SEGMENTS + 3) == [b"E" * 10] * (gso.MAX_SEGMENTS + 3)
        assert batch.errors == 0
    finally:
        for s in (rx1, rx2, tx):
            s.close()


def test_without_gso_each_datagram_goes_alone():
    import socket

    from testbed.ran import gso

    rx = _receiver()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        batch = gso.Batch(gso=False)
        for i in range(3):
            _put(batch, tx, rx.getsockname(), bytes([i]) * 50)
        assert batch.count == 0 and batch.calls == 3
        assert _drain(rx, 3) == [bytes([i]) * 50 for i in range(3)]
    finally:
        rx.close()
        tx.close()
