"""HL7 v2 messages as an alliance's HIS and LIS exchange them, MLLP framing, and acknowledgements.

Shared by the MLLP server (traffic/mllp_server.py) and the sender
(traffic/hl7_client.py). Messages are built as text in HL7 v2.5 layout
(segments separated by CR, fields by |, components by ^) and parsed with the
python-hl7 package, so the control id an ACK echoes (MSA-2) is read from
MSH-10 of a properly parsed message, not found by string search.

- ADT^A01: a patient admitted at a branch campus (HIS).
- ORM^O01: a laboratory order placed from the HIS to the LIS.
- ORU^R01: a complete blood count reported by the LIS (one OBX per analyte).
"""
from __future__ import annotations

import datetime as _dt

import hl7

START, END = b"\x0b", b"\x1c\x0d"  # MLLP: <VT> message <FS><CR>
TYPES = ("ADT^A01", "ORM^O01", "ORU^R01")

# A complete blood count: (code, name, value, units, reference range)
_CBC = (
    ("6690-2", "WBC", "6.4", "10*9/L", "3.5-9.5"),
    ("789-8", "RBC", "4.71", "10*12/L", "4.3-5.8"),
    ("718-7", "HGB", "142", "g/L", "130-175"),
    ("4544-3", "HCT", "0.43", "L/L", "0.40-0.50"),
    ("787-2", "MCV", "91.3", "fL", "82-100"),
    ("785-6", "MCH", "30.1", "pg", "27-34"),
    ("786-4", "MCHC", "330", "g/L", "316-354"),
    ("777-3", "PLT", "236", "10*9/L", "125-350"),
    ("770-8", "NEUT%", "58.2", "%", "40-75"),
    ("736-9", "LYMPH%", "31.5", "%", "20-50"),
)


def frame(message: str) -> bytes:
    """One MLLP block."""
    return START + message.encode("utf-8") + END


def _now() -> str:
    return _dt.datetime.now().strftime("%Y%m%d%H%M%S")


def _msh(msg_type: str, control_id: str, sender: str, receiver: str) -> str:
    return (f"MSH|^~\\&|{sender}|XTCH-BRANCH|{receiver}|XTCH|{_now()}||{msg_type}^{_structure(msg_type)}|"
            f"{control_id}|P|2.5|||AL|NE||UNICODE UTF-8")


def _structure(msg_type: str) -> str:
    return {"ADT^A01": "ADT_A01", "ORM^O01": "ORM_O01", "ORU^R01": "ORU_R01"}[msg_type]


def build(msg_type: str, control_id: str, patient_id: str, seq: int = 1, sender: str = "TESTBED",
          receiver: str = "HIS") -> str:
    """A complete message of `msg_type` (one of TYPES), segments joined by CR."""
    if msg_type not in TYPES:
        raise ValueError(f"unsupported message type {msg_type!r}; known: {', '.join(TYPES)}")
    now = _now()
    pid = (f"PID|1||{patient_id}^^^XTCH^MR||Synthetic^Patient^{seq}||19700101|O|||"
           f"1 Heping Rd^^Xiangtan^Hunan^411100^CHN||^PRN^PH^^^^13800000000")
    order = f"ORD{seq:08d}"
    if msg_type == "ADT^A01":
        segs = [_msh(msg_type, control_id, sender, receiver), f"EVN|A01|{now}", pid,
                f"PV1|1|I|WARD3^301^1^XTCH||||D001^Attending^Doctor|||MED||||1|||D001^Attending^Doctor|IP|"
                f"V{seq:08d}|||||||||||||||||||||||||{now}"]
    elif msg_type == "ORM^O01":
        segs = [_msh(msg_type, control_id, sender, receiver), pid, "PV1|1|O|CLINIC1",
                f"ORC|NW|{order}|||||^^^{now}^^R",
                f"OBR|1|{order}||58410-2^CBC panel - Blood by Automated count^LN|||{now}"]
    else:
        segs = [_msh(msg_type, control_id, sender, receiver), pid,
                f"OBR|1|{order}|LAB{seq:08d}|58410-2^CBC panel - Blood by Automated count^LN|||{now}|||||||"
                f"{now}||D001^Attending^Doctor||||||{now}|||F"]
        segs += [f"OBX|{i}|NM|{code}^{name}^LN||{value}|{units}|{ref}|N|||F|||{now}"
                 for i, (code, name, value, units, ref) in enumerate(_CBC, 1)]
    return "\r".join(segs) + "\r"


def control_id(message: hl7.Message) -> str:
    return str(message.segment("MSH")(10))


def ack_for(text: str, application: str) -> tuple[str, str]:
    """(ACK message, code) answering `text`: AA when it parses and carries MSH-9 and MSH-10,
    AR (rejected, with an ERR segment) otherwise."""
    try:
        msg = hl7.parse(text)
        msh = msg.segment("MSH")
        if not str(msh(9)).strip() or not str(msh(10)).strip():
            raise ValueError("MSH-9 (message type) or MSH-10 (control id) is empty")
    except Exception as exc:  # noqa: BLE001 - any unparsable input is the sender's error: reject it
        reason = str(exc).replace("|", "/").replace("\r", " ")[:80]
        ack = (f"MSH|^~\\&|{application}|XTCH|||{_now()}||ACK|{_now()}R|P|2.5\r"
               f"MSA|AR|{_guess_control_id(text)}\rERR|||101^Required field missing^HL70357|E||||{reason}\r")
        return ack, "AR"
    ack = msg.create_ack("AA", message_id=f"A{control_id(msg)}"[:20], application=application)
    text_ack = str(ack)
    return (text_ack if text_ack.endswith("\r") else text_ack + "\r"), "AA"


def _guess_control_id(text: str) -> str:
    """MSH-10 of a message too broken to parse, when the MSH line itself can still be split."""
    first = text.split("\r", 1)[0]
    if first.startswith("MSH") and len(first) > 3:
        fields = first.split(first[3])
        if len(fields) > 9:
            return fields[9][:20]
    return ""


def parse_ack(text: str) -> tuple[str, str]:
    """(MSA-1 acknowledgement code, MSA-2 control id) of an ACK."""
    msg = hl7.parse(text)
    msa = msg.segment("MSA")
    return str(msa(1)), str(msa(2))
