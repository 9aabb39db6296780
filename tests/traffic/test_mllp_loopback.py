"""The HIS/LIS MLLP receiver on the loopback interface: the sender, and a raw socket as a second client."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from traffic import hl7_messages as h
from tests.traffic.loopback import serving


@pytest.fixture
def lis():
    with serving("traffic.mllp_server", "--app", "LIS", "--max-message", "4096") as port:
        yield port


def _read_blocks(sock: socket.socket, n: int) -> list[str]:
    buf, out = b"", []
    sock.settimeout(5)
    while len(out) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        while h.END in buf:
            block, buf = buf.split(h.END, 1)
            assert block.startswith(h.START)
            out.append(block[1:].decode())
    return out


def test_sender_gets_an_ack_for_every_message(lis):
    r = subprocess.run([sys.executable, "-m", "traffic.hl7_client", "--host", "127.0.0.1", "--port", str(lis),
                        "--interval", "0.02", "--duration", "1", "--types", "ADT^A01,ORM^O01,ORU^R01",
                        "--receiver", "LIS"], capture_output=True, text=True, timeout=30)
    doc = json.loads(r.stdout)
    assert doc["errors"] == [] and doc["sent"] == doc["received"] == 50
    # the sender asks for an accept ACK only (MSH-15 AL, MSH-16 NE): one CA per message
    assert doc["acks"] == {"CA": 50} and doc["connects"] == 1 and len(doc["latency_ms"]) == 50


def test_raw_socket_pipelined_messages_and_rejects(lis):
    with socket.create_connection(("127.0.0.1", lis), timeout=5) as s:
        # two messages in one write: two ACKs, in order, each with its own control id
        s.sendall(h.frame(h.build("ADT^A01", "RAW1", "P1")) + h.frame(h.build("ORU^R01", "RAW2", "P1")))
        acks = _read_blocks(s, 2)
        assert [h.parse_ack(a) for a in acks] == [("CA", "RAW1"), ("CA", "RAW2")]
        # a block that is no HL7 message: rejected, connection kept
        s.sendall(h.frame("not hl7 at all"))
        assert h.parse_ack(_read_blocks(s, 1)[0])[0] == "AR"
        s.sendall(h.frame(h.build("ADT^A01", "RAW3", "P1")))
        assert h.parse_ack(_read_blocks(s, 1)[0]) == ("CA", "RAW3")
        # a block beyond --max-message: rejected and the connection closed
        s.sendall(h.frame("MSH|" + "x" * 8000))
        assert h.parse_ack(_read_blocks(s, 1)[0])[0] == "AR"
        assert s.recv(10) == b""


def test_no_receiver_gives_errors_within_the_time():
    from tests.traffic.loopback import free_port

    r = subprocess.run([sys.executable, "-m", "traffic.hl7_client", "--host", "127.0.0.1", "--port",
                        str(free_port()), "--interval", "0.2", "--duration", "1", "--timeout", "1"],
                       capture_output=True, text=True, timeout=30)
    doc = json.loads(r.stdout)
    assert doc["received"] == 0 and doc["sent"] == 5 and len(doc["errors"]) == 5
