"""HL7 v2 / MLLP conformance of the HIS/LIS receiver: framing between blocks, segment separators,
original and enhanced acknowledgement modes, supported types and versions, ACKs not acknowledged,
and rejections that say who sent what and why (HL7 table 0357)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import hl7
import pytest

from traffic import hl7_messages as h
from tests.traffic.loopback import serving


def msg(msg_type: str = "ADT^A01", ctrl: str = "C1", version: str = "2.5", proc: str = "P", accept: str = "",
        app: str = "", sender: str = "EPIC", facility: str = "BRANCH2", sep: str = "\r", when: str = "20260101120000",
        extra: str = "") -> str:
    """A message in the layout a third-party engine would send (original mode unless accept/app are set)."""
    msh = f"MSH|^~\\&|{sender}|{facility}|HIS|XTCH|{when}||{msg_type}|{ctrl}|{proc}|{version}"
    if accept or app:
        msh += f"|||{accept}|{app}"
    segs = [msh + extra, "EVN|A01|20260101120000", "PID|1||P77^^^XTCH^MR||Doe^John", "PV1|1|I|WARD3"]
    return sep.join(segs) + sep


def parsed(ack: str) -> hl7.Message:
    assert "\n" not in ack and ack.endswith("\r"), repr(ack)
    return hl7.parse(ack)


def msa(ack: str) -> tuple[str, str]:
    m = parsed(ack).segment("MSA")
    return str(m(1)), str(m(2))


def err_code(ack: str) -> str:
    """HL7 table 0357 code of the ACK's ERR segment: ERR-3.1 (v2.5+) or ERR-1.4.1 (v2.3/2.4)."""
    err = parsed(ack).segment("ERR")
    return str(err(3)(1)(1)) if str(err(3)) else str(err(1)(1)(4)(1))


def codes(text: str, app: str = "HIS") -> list[str]:
    return [code for _, code in h.respond(text, app)]


# --- 2. segment separators --------------------------------------------------------------------------


@pytest.mark.parametrize("sep", ["\n", "\r\n", "\r"])
def test_lf_and_crlf_segment_separators_are_normalised(sep):
    text = msg(sep=sep)
    (ack, code), = h.respond(text, "HIS")
    assert code == "AA" and msa(ack) == ("AA", "C1")
    a = parsed(ack)
    assert len(a) == 2 and str(a.segment("MSH")(12)) == "2.5"  # not "2.5<LF>EVN..."
    assert [str(s[0]) for s in h.parse(text)] == ["MSH", "EVN", "PID", "PV1"]


def test_blank_lines_between_segments_and_lf_inside_a_value():
    text = "MSH|^~\\&|A|B|HIS|XTCH|20260101||ADT^A08|C2|P|2.4\r\n\r\nEVN|A08\r\nPID|1||P1||Doe\nline two\r\n"
    m = h.parse(text)
    assert [str(s[0]) for s in m] == ["MSH", "EVN", "PID"]
    assert str(m.segment("PID")(5)) == "Doe\nline two"  # a bare LF not followed by a segment id is data
    assert codes(text) == ["AA"]


# --- 3a. original and enhanced acknowledgement modes --------------------------------------------------


def test_original_mode_is_answered_aa():
    assert codes(msg()) == ["AA"]


def test_the_testbeds_own_messages_ask_for_an_accept_ack_only():
    text = h.build("ADT^A01", "C77", "P1")
    assert "|AL|NE|" in text
    (ack, code), = h.respond(text, "HIS")
    assert code == "CA" and msa(ack) == ("CA", "C77")
    assert str(parsed(ack).segment("MSH")(9)(1)(1)) == "ACK"


@pytest.mark.parametrize("accept,app,good,bad", [
    ("AL", "NE", ["CA"], ["CR"]),
    ("AL", "AL", ["CA", "AA"], ["CR"]),
    ("NE", "AL", ["AA"], ["AR"]),  # no accept ack wanted: the rejection goes in the application ack
    ("NE", "NE", [], []),
    ("ER", "NE", [], ["CR"]),
    ("SU", "NE", ["CA"], []),
    ("AL", "ER", ["CA"], ["CR"]),
    ("AL", "SU", ["CA", "AA"], ["CR"]),
    ("AL", "", ["CA"], ["CR"]),  # an empty condition in enhanced mode asks for nothing
    ("", "AL", ["AA"], ["AR"]),
])
def test_enhanced_mode_follows_msh15_and_msh16(accept, app, good, bad):
    assert codes(msg(accept=accept, app=app)) == good
    assert codes(msg("ZZZ^Z99", accept=accept, app=app)) == bad


def test_enhanced_mode_error_that_is_no_rejection_is_ce():
    (ack, code), = h.respond(msg(ctrl="", accept="AL", app="NE"), "HIS")
    assert code == "CE" and err_code(ack) == "101"


# --- 3b. supported message types, events, processing ids and versions ----------------------------------


@pytest.mark.parametrize("msg_type", ["ADT^A01", "ADT^A04", "ADT^A08", "ADT^A03^ADT_A03", "ORM^O01", "ORU^R01"])
@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8"])
def test_supported_types_and_versions(msg_type, version):
    (ack, code), = h.respond(msg(msg_type, version=version), "HIS")
    assert code == "AA" and str(parsed(ack).segment("MSH")(12)) == version


@pytest.mark.parametrize("kw,code,field", [
    ({"msg_type": "ZZZ^Z99"}, "200", "9"),
    ({"msg_type": "ADT^A99"}, "201", "9"),
    ({"msg_type": "ORU^R30"}, "201", "9"),
    ({"version": "9.9"}, "203", "12"),
    ({"version": "2.1"}, "203", "12"),
    ({"proc": "X"}, "202", "11"),
])
def test_unsupported_is_rejected_with_its_code(kw, code, field):
    (ack, got), = h.respond(msg(**kw), "HIS")
    assert got == "AR" and msa(ack) == ("AR", "C1") and err_code(ack) == code
    err = parsed(ack).segment("ERR")
    assert str(err(2)).startswith(f"MSH^1^{field}")  # ERL: segment^sequence^field[^repetition^component]


def test_reject_in_an_old_version_uses_its_err_layout():
    (ack, code), = h.respond(msg("ZZZ^Z99", version="2.3"), "HIS")
    err = parsed(ack).segment("ERR")
    assert code == "AR" and str(parsed(ack).segment("MSH")(12)) == "2.3"
    assert str(err(1)) == "MSH^1^9^200&Unsupported message type&HL70357"
    assert str(parsed(ack).segment("MSA")(3))  # the reason, in MSA-3 where there is no ERR-8


# --- 3c. acknowledgements are not acknowledged --------------------------------------------------------


@pytest.mark.parametrize("text", [
    "MSH|^~\\&|LIS|XTCH|HIS|XTCH|20260101||ACK^A01^ACK|A1|P|2.5\rMSA|AA|C1\r",
    "MSH|^~\\&|LIS|XTCH|HIS|XTCH|20260101||ACK|A2|P|2.5\rMSA|AR|C1\rERR|||101^x^HL70357|E\r",
    "MSH|^~\\&|LIS|XTCH|HIS|XTCH|20260101||ACK^A01|A3|P|2.5|||AL|AL\rMSA|CA|C1\r",
    "MSH|^~\\&|LIS|XTCH|HIS|XTCH|20260101||ACK^A01^ACK||P|2.5\rMSA|AA|C1\r",  # even a broken one
    "MSH|^~\\&|LIS|XTCH|HIS|XTCH|20260101|||A4|P|2.5\rMSA|AE|C1\r",  # an MSA makes it a response
])
def test_an_incoming_ack_is_not_acknowledged(text):
    assert h.respond(text, "HIS") == []
    ack, code = h.ack_for(text, "HIS")
    assert ack is None and code == ""


# --- 3d. rejections: addressed to the sender, unique control ids, the right error code ------------------


def test_reject_is_addressed_to_the_sender():
    (ack, _), = h.respond(msg("ZZZ^Z99", sender="EPIC^1.2.3^ISO", facility="BRANCH2"), "HIS")
    m = parsed(ack).segment("MSH")
    assert str(m(3)) == "HIS" and str(m(5)) == "EPIC^1.2.3^ISO" and str(m(6)) == "BRANCH2"


def test_ack_control_ids_are_unique():
    ids = [str(parsed(a).segment("MSH")(10)) for _ in range(300)
           for text in (msg("ZZZ^Z99"), "garbage", msg()) for a, _ in h.respond(text, "HIS")]
    assert len(ids) == 900 and len(set(ids)) == 900 and all(0 < len(i) <= 20 for i in ids)


@pytest.mark.parametrize("text,code", [
    ("", "100"),
    ("hello", "100"),
    ("PID|1||P1\rMSH|^~\\&|A|B|C|D|2026||ADT^A01|C1|P|2.5\r", "100"),
    ("MSH|^~\\&|A|B|C|D|2026||ADT^A01|C1|P|2.5\rEVN|A01\rMSH|^~\\&|A|B|C|D|2026||ADT^A01|C2|P|2.5\r", "100"),
    ("MSH|^~\\&|A|B|C|D|2026||ADT^A01|C1|P|2.5\rP I|1\r", "100"),
    ("MSH|^~\\&|A|B|C|D|2026||ADT^A01||P|2.5\r", "101"),
    ("MSH|^~\\&|A|B|C|D|2026||||P|2.5\r", "101"),
    ("MSH|^~\\&|A|B|C|D|2026||ADT^A01|C1||2.5\r", "101"),
    ("MSH|^~\\&|A|B|C|D|2026||ADT^A01|C1|P|\r", "101"),
    ("MSH|^~\\&|A|B|C|D|||ADT^A01|C1|P|2.5\r", "101"),
    ("MSH|^~\\&|A|B|C|D|2026||ADT|C1|P|2.5\r", "101"),
    ("MSH|^~\\&|A|B|C|D|yesterday||ADT^A01|C1|P|2.5\r", "102"),
    ("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|C1|P|2.5|||XX|NE\r", "103"),
])
def test_error_codes_follow_table_0357(text, code):
    (ack, got), = h.respond(text, "HIS")
    assert got in ("AR", "CE") and err_code(ack) == code, ack


def test_msh7_is_optional_before_2_5():
    assert codes("MSH|^~\\&|A|B|C|D|||ADT^A01|C1|P|2.4\rEVN|A01\r") == ["AA"]


def test_an_internal_failure_is_207(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("database down")
    monkeypatch.setattr(h.hl7, "parse", boom)
    (ack, code), = h.respond(msg(), "HIS")
    assert code == "AR" and "MSA|AR|C1" in ack and "|207^Application internal error^HL70357|" in ack
    assert "MSH|^~\\&|HIS|XTCH|EPIC|BRANCH2|" in ack


def test_reason_is_escaped_not_mangled():
    (ack, _), = h.respond("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|C1|P|9.9\r", "HIS")
    err = parsed(ack).segment("ERR")
    assert str(err(4)) == "E" and "9.9" in str(err(8))
    (ack, _), = h.respond("hello|world^x", "HIS")
    assert "hello\\F\\world\\S\\x" in ack  # the sender's text, HL7-escaped, inside ERR-8


# --- 1. framing, on a live server ------------------------------------------------------------------------


@pytest.fixture
def his():
    with serving("traffic.mllp_server", "--app", "HIS", "--max-message", "4096") as port:
        yield port


class Conn:
    def __init__(self, port: int) -> None:
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.s.sendall(data)

    def blocks(self, n: int, wait: float = 5.0) -> list[str]:
        """The next n blocks; fewer if the server closes or stays silent for `wait` seconds."""
        out = []
        self.s.settimeout(wait)
        while len(out) < n:
            if h.END in self.buf:
                block, self.buf = self.buf.split(h.END, 1)
                assert block.startswith(h.START), block
                out.append(block[1:].decode())
                continue
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            self.buf += chunk
        return out

    def closed(self) -> bool:
        self.s.settimeout(2)
        try:
            return self.s.recv(1) == b""
        except socket.timeout:
            return False

    def close(self) -> None:
        self.s.close()


@pytest.mark.parametrize("between", [b"\n", b"\r\n", b" \t\r\n\n", b"\r"])
def test_whitespace_between_blocks_is_skipped(his, between):
    c = Conn(his)
    try:
        c.send(h.frame(msg(ctrl="W1")) + between)
        assert [msa(a) for a in c.blocks(1)] == [("AA", "W1")]
        c.send(h.frame(msg(ctrl="W2")) + between + h.frame(msg(ctrl="W3")) + between)
        assert [msa(a) for a in c.blocks(2)] == [("AA", "W2"), ("AA", "W3")]
        assert c.blocks(1, wait=0.5) == [] and not c.closed()
    finally:
        c.close()


def test_junk_between_blocks_is_rejected_and_the_next_message_still_served(his):
    c = Conn(his)
    try:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        (ack,) = c.blocks(1)
        assert msa(ack) == ("AR", "") and err_code(ack) == "100" and "MLLP" in ack
        c.send(h.frame(msg(ctrl="J1")))
        assert [msa(a) for a in c.blocks(1)] == [("AA", "J1")]
        c.send(h.frame(msg(ctrl="J2")) + b"xx" + h.frame(msg(ctrl="J3")))
        acks = [msa(a) for a in c.blocks(3)]
        assert acks == [("AA", "J2"), ("AR", ""), ("AA", "J3")]
    finally:
        c.close()


def test_an_unterminated_block_is_rejected_and_the_next_one_served(his):
    c = Conn(his)
    try:
        c.send(h.START + msg(ctrl="U1").encode() + h.frame(msg(ctrl="U2")))
        acks = c.blocks(2)
        assert [msa(a) for a in acks] == [("AR", "U1"), ("AA", "U2")]
        assert err_code(acks[0]) == "100"
    finally:
        c.close()


def test_a_too_large_block_is_104_and_closes(his):
    c = Conn(his)
    try:
        c.send(h.frame(msg(ctrl="BIG1", extra="|" + "x" * 8000)))
        (ack,) = c.blocks(1)
        assert msa(ack) == ("AR", "BIG1") and err_code(ack) == "104"
        assert c.closed()
    finally:
        c.close()


def test_lf_separated_message_on_the_wire(his):
    c = Conn(his)
    try:
        c.send(h.frame(msg(ctrl="LF1", sep="\n")) + b"\n")
        (ack,) = c.blocks(1)
        assert msa(ack) == ("AA", "LF1") and str(parsed(ack).segment("MSH")(12)) == "2.5"
    finally:
        c.close()


def test_acks_and_enhanced_mode_on_the_wire(his):
    c = Conn(his)
    try:
        c.send(h.frame("MSH|^~\\&|LIS|XTCH|HIS|XTCH|20260101||ACK^A01^ACK|A1|P|2.5\rMSA|AA|C1\r"))
        c.send(h.frame(msg(ctrl="E1", accept="AL", app="AL")))
        c.send(h.frame(msg(ctrl="E2", accept="AL", app="NE")))
        c.send(h.frame(msg(ctrl="E3", accept="NE", app="NE")))
        c.send(h.frame(msg(ctrl="E4")))
        acks = [msa(a) for a in c.blocks(5, wait=2)]
        assert acks == [("CA", "E1"), ("AA", "E1"), ("CA", "E2"), ("AA", "E4")]
    finally:
        c.close()


def test_two_rejects_in_the_same_second_have_distinct_ids(his):
    c = Conn(his)
    try:
        c.send(h.frame(msg("", ctrl="R1")) + h.frame(msg("", ctrl="R2")))  # MSH-9 missing: 101
        a, b = c.blocks(2)
        assert [(msa(x), err_code(x)) for x in (a, b)] == [(("AR", "R1"), "101"), (("AR", "R2"), "101")]
        ids = [str(parsed(x).segment("MSH")(10)) for x in (a, b)]
        assert ids[0] != ids[1]
        assert [str(parsed(x).segment("MSH")(5)) for x in (a, b)] == ["EPIC", "EPIC"]
    finally:
        c.close()


def test_workload_client_counts_commit_accepts(his):
    r = subprocess.run([sys.executable, "-m", "traffic.hl7_client", "--host", "127.0.0.1", "--port", str(his),
                        "--interval", "0.02", "--duration", "0.5", "--types", "ADT^A01,ORM^O01,ORU^R01"],
                       capture_output=True, text=True, timeout=30)
    doc = json.loads(r.stdout)
    assert doc["errors"] == [] and doc["sent"] == doc["received"] == 25
    assert doc["acks"] == {"CA": 25} and len(doc["latency_ms"]) == 25


def test_workload_client_reports_rejects_as_errors():
    """A receiver that answers CR (or stays silent, or AA in original mode) is scored as such."""
    from tests.traffic.loopback import free_port
    import threading

    port = free_port()
    srv = socket.socket()
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    replies = iter(["CR", "AA", "CE", "CA"])

    def serve():
        conn, _ = srv.accept()
        buf = b""
        with conn:
            for code in replies:
                while h.END not in buf:
                    buf += conn.recv(65536)
                block, buf = buf.split(h.END, 1)
                ctrl = str(hl7.parse(block[1:].decode()).segment("MSH")(10))
                conn.sendall(h.frame(f"MSH|^~\\&|X|Y|Z|W|2026||ACK|K{ctrl}|P|2.5\rMSA|{code}|{ctrl}\r"))
            time.sleep(0.5)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = subprocess.run([sys.executable, "-m", "traffic.hl7_client", "--host", "127.0.0.1", "--port", str(port),
                            "--interval", "0.05", "--duration", "0.2", "--timeout", "2"],
                           capture_output=True, text=True, timeout=30)
    finally:
        t.join(5)
        srv.close()
    doc = json.loads(r.stdout)
    assert doc["sent"] == 4 and doc["received"] == 2 and len(doc["latency_ms"]) == 2
    assert doc["acks"] == {"CR": 1, "AA": 1, "CE": 1, "CA": 1} and len(doc["errors"]) == 2


def test_deframer_whatever_the_read_boundaries():
    """The same stream cut into blocks alike whether it arrives at once or one byte per read."""
    from traffic.mllp_server import Deframer

    a, b = msg(ctrl="A").encode(), msg(ctrl="B").encode()
    stream = (b"\r\n" + h.START + a + h.END + b"\n" + b"junk!" + h.START + a + h.START + b + h.END + b"\r\n"
              + h.START + b"y" * 300 + h.END + h.START + b)
    want = [("block", a), ("junk", b"junk!"), ("unterminated", a), ("block", b), ("too-large", b"y" * 200)]
    for step in (len(stream), 1, 7):
        d, got = Deframer(200), []
        for i in range(0, len(stream), step):
            d.feed(stream[i:i + step])
            while (e := d.next()) is not None:
                got.append(e)
        merged: list[tuple[str, bytes]] = []  # junk split over reads is one run (the server answers it once)
        for kind, data in got:
            if kind == "junk" and merged and merged[-1][0] == "junk":
                merged[-1] = ("junk", merged[-1][1] + data)
            else:
                merged.append((kind, data))
        assert merged == want, (step, merged)
        assert d.next() is None  # the last block is not complete yet
