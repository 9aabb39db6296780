"""HL7 v2 messages: built well-formed, acknowledged with their own control id, rejects explained."""
from __future__ import annotations

import hl7
import pytest

from traffic import hl7_messages as h


@pytest.mark.parametrize("msg_type", h.TYPES)
def test_messages_parse_and_carry_type_and_control_id(msg_type):
    text = h.build(msg_type, "CTRL0001", "P42", seq=3, sender="TABLET", receiver="LIS")
    msg = hl7.parse(text)
    msh = msg.segment("MSH")
    assert str(msh(9)) == f"{msg_type}^{msg_type.replace('^', '_')}"
    assert str(msh(10)) == "CTRL0001" and str(msh(3)) == "TABLET" and str(msh(5)) == "LIS"
    assert str(msg.segment("PID")(3)(1)(1)) == "P42"
    assert all(seg[0][0] in {"MSH", "EVN", "PID", "PV1", "ORC", "OBR", "OBX"} for seg in msg)


def test_oru_carries_a_blood_count():
    msg = hl7.parse(h.build("ORU^R01", "C1", "P1"))
    obx = msg.segments("OBX")
    assert len(obx) == 10 and str(obx[2](3)(1)(2)) == "HGB" and str(obx[2](5)) == "142"


def test_ack_echoes_the_control_id():
    ack, code = h.ack_for(h.build("ADT^A01", "C77", "P1"), "HIS")  # MSH-15 AL, MSH-16 NE: an accept ACK
    assert code == "CA" and h.parse_ack(ack) == ("CA", "C77")
    msh = hl7.parse(ack).segment("MSH")
    assert str(msh(3)) == "HIS" and str(msh(9)(1)(1)) == "ACK"


@pytest.mark.parametrize("text", ["", "hello", "MSH|^~\\&|A|B|C|D|2026||ADT^A01||P|2.5\r",
                                  "MSH|^~\\&|A|B|C|D|2026||||P|2.5\r"])
def test_broken_messages_are_rejected_with_a_reason(text):
    ack, code = h.ack_for(text, "LIS")
    assert code == "AR"
    assert h.parse_ack(ack)[0] == "AR"
    assert hl7.parse(ack).segment("ERR")


def test_reject_keeps_the_control_id_when_msh_can_be_split():
    ack, code = h.ack_for("MSH|^~\\&|A|B|C|D|2026||ADT^A01|C9|P|2.5\rPID|\x00broken", "HIS")
    assert h.parse_ack(ack)[1] in ("C9", "")  # parsed (AA) or rejected, but never another id


def test_mllp_frame():
    assert h.frame("MSH|x\r") == b"\x0bMSH|x\r\x1c\x0d"
    with pytest.raises(ValueError):
        h.build("ADT^A99", "C", "P")
