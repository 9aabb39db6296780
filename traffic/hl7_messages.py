"""HL7 v2 messages as an alliance's HIS and LIS exchange them, MLLP framing, and acknowledgements.

Shared by the MLLP server (traffic/mllp_server.py) and the sender
(traffic/hl7_client.py). Messages are built as text in HL7 v2.5 layout
(segments separated by CR, fields by |, components by ^) and parsed with the
python-hl7 package, so the control id an ACK echoes (MSA-2) is read from
MSH-10 of a properly parsed message, not found by string search.

- ADT^A01: a patient admitted at a branch campus (HIS).
- ORM^O01: a laboratory order placed from the HIS to the LIS.
- ORU^R01: a complete blood count reported by the LIS (one OBX per analyte).

The messages built here ask, in enhanced acknowledgement mode, for an accept
ACK and no application ACK (MSH-15 AL, MSH-16 NE). `respond` is the receiving
side: which messages the HIS/LIS take (VERSIONS, EVENTS, PROCESSING_IDS), the
acknowledgements owed for one in original or enhanced mode (none for an ACK),
and rejections coded by HL7 table 0357 and addressed to the sender.
"""
from __future__ import annotations

import datetime as _dt
import itertools as _itertools
import os as _os
import re
import time as _time

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


# --- receiving: what the HIS/LIS accept, and how they acknowledge -----------------------------------------

VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")  # MSH-12
EVENTS = {"ADT": frozenset(f"A{n:02d}" for n in range(1, 63)),  # MSH-9: every ADT event A01..A62
          "ORM": frozenset({"O01"}), "ORU": frozenset({"R01"})}
PROCESSING_IDS = ("P", "T", "D")  # MSH-11, HL7 table 0103
CONDITIONS = ("AL", "NE", "ER", "SU")  # MSH-15/MSH-16, HL7 table 0155
RESPONSE_TYPES = ("ACK", "MCF")  # acknowledgements: never acknowledged themselves
ERRORS = {  # HL7 table 0357
    100: "Segment sequence error", 101: "Required field missing", 102: "Data type error",
    103: "Table value not found", 104: "Value too long", 200: "Unsupported message type",
    201: "Unsupported event code", 202: "Unsupported processing id", 203: "Unsupported version id",
    207: "Application internal error",
}
REJECTIONS = (200, 201, 202, 203)  # enhanced mode: CR (commit reject); any other error is CE
_OLD_ERR = ("2.3", "2.3.1", "2.4")  # ERR-1 (ELD) carries the error; no ERR-2..8 yet
_ACK_VERSION = "2.5"  # of an ACK to a message whose version is unknown or unsupported
_DEFAULT_ENC = "^~\\&"
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_LINE_BREAKS = re.compile(r"([\r\n]+)")
_DTM = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,4})?)?)?)?)?)?([+-]\d{4})?")


class Hl7Error(Exception):
    """An error condition of HL7 table 0357, where it was found (ERL: segment, sequence, field[, component])."""

    def __init__(self, code: int, reason: str, where: tuple = ()) -> None:
        super().__init__(reason)
        self.code, self.reason, self.where = code, reason, where


def normalise(text: str) -> str:
    """`text` with CR as its only segment separator: LF and CRLF (and blank lines) before a segment id
    become one CR, as most engines read them; a bare LF followed by anything else stays data."""
    text = text.lstrip("\ufeff \t\r\n").rstrip(" \t\r\n")
    if not text:
        return ""
    fs = text[3] if text.startswith("MSH") and len(text) > 3 else "|"
    parts = _LINE_BREAKS.split(text)  # text, breaks, text, ...: linear, whatever the input
    for i in range(1, len(parts), 2):
        after = parts[i + 1]
        if "\r" in parts[i] or (_SEGMENT_ID.match(after) and (len(after) == 3 or after[3] == fs)):
            parts[i] = "\r"
    return "".join(parts) + "\r"


def parse(text: str) -> hl7.Message:
    """A received message, separators normalised, parsed with python-hl7."""
    return hl7.parse(normalise(text))


class Header:
    """The MSH segment of a received message, split by its own separators (before any full parse)."""

    def __init__(self, segment: str) -> None:
        self.fs = segment[3]
        self.fields = ["MSH", self.fs] + segment[4:].split(self.fs)
        enc = self.fields[2]
        self.valid = (len(enc) in (4, 5) and len(set(enc + self.fs)) == len(enc) + 1
                      and not any(c.isalnum() or c.isspace() for c in enc + self.fs))
        self.enc = enc if self.valid else _DEFAULT_ENC

    def get(self, n: int) -> str:
        return self.fields[n] if n < len(self.fields) else ""

    def comp(self, n: int, c: int = 1) -> str:
        """Component c of MSH-n's first repetition."""
        value = self.get(n).split(self.enc[1])[0]
        parts = value.split(self.enc[0])
        return parts[c - 1].strip() if c <= len(parts) else ""

    @property
    def version(self) -> str:
        return self.comp(12)

    @property
    def enhanced(self) -> bool:
        return bool(self.get(15).strip() or self.get(16).strip())

    def condition(self, n: int) -> str:
        """MSH-15/16 in enhanced mode: an empty field asks for nothing (NE); an invalid one is read as AL,
        so that its own error (103) is answered."""
        value = self.comp(n)
        return value if value in CONDITIONS else ("AL" if value else "NE")


def header(text: str) -> Header | None:
    """The MSH of `text` (normalised) if its first segment is one that can be split, else None."""
    first = text.split("\r", 1)[0]
    if first.startswith("MSH") and len(first) > 3 and not first[3].isalnum() and not first[3].isspace():
        return Header(first)
    return None


def check(text: str) -> Header:
    """The header of a normalised message the HIS/LIS accept; Hl7Error (table 0357) for one they do not.
    Only the header and the segment syntax are checked (the emulated applications process any content)."""
    if not text:
        raise Hl7Error(100, "empty message: no MSH segment")
    segments = text.rstrip("\r").split("\r")
    first = segments[0]
    if not first.startswith("MSH"):
        where = (first[:3], 1) if _SEGMENT_ID.fullmatch(first[:3]) else ()
        raise Hl7Error(100, f"the first segment is not MSH: not an HL7 v2 message? It starts {first[:40]!r}", where)
    if len(first) == 3:
        raise Hl7Error(101, "MSH-1 (field separator) is missing", ("MSH", 1, 1))
    hdr = header(text)
    if hdr is None:
        raise Hl7Error(102, f"MSH-1 {first[3]!r} is no field separator", ("MSH", 1, 1))
    if not hdr.get(2):
        raise Hl7Error(101, "MSH-2 (encoding characters) is missing", ("MSH", 1, 2))
    if not hdr.valid:
        raise Hl7Error(102, f"MSH-2 {hdr.get(2)!r} is not 4 distinct encoding characters", ("MSH", 1, 2))
    for i, seg in enumerate(segments[1:], 2):
        name = seg[:3]
        if not _SEGMENT_ID.fullmatch(name) or (len(seg) > 3 and seg[3] != hdr.fs):
            raise Hl7Error(100, f"segment {i} has no segment id: it starts {seg[:20]!r}", ())
        if name == "MSH":
            raise Hl7Error(100, f"segment {i} is a second MSH (one message per MLLP block)", ("MSH", 2))
    if not hdr.comp(9):
        raise Hl7Error(101, "MSH-9 (message type) is missing", ("MSH", 1, 9))
    if not hdr.get(10).strip():
        raise Hl7Error(101, "MSH-10 (message control id) is missing", ("MSH", 1, 10))
    if not hdr.version:
        raise Hl7Error(101, "MSH-12 (version id) is missing", ("MSH", 1, 12))
    if hdr.version not in VERSIONS:
        raise Hl7Error(203, f"version {hdr.version!r} is not supported (supported: {', '.join(VERSIONS)})",
                       ("MSH", 1, 12))
    kind, event = hdr.comp(9), hdr.comp(9, 2)
    if kind not in EVENTS:
        raise Hl7Error(200, f"message type {kind!r} is not supported (supported: {', '.join(EVENTS)})",
                       ("MSH", 1, 9))
    if not event:
        raise Hl7Error(101, f"MSH-9.2 (trigger event) of {kind} is missing", ("MSH", 1, 9, 1, 2))
    if event not in EVENTS[kind]:
        raise Hl7Error(201, f"event {event} of {kind} is not supported", ("MSH", 1, 9, 1, 2))
    if not hdr.comp(11):
        raise Hl7Error(101, "MSH-11 (processing id) is missing", ("MSH", 1, 11))
    if hdr.comp(11) not in PROCESSING_IDS:
        raise Hl7Error(202, f"processing id {hdr.comp(11)!r} is not supported (P, T, D)", ("MSH", 1, 11))
    when = hdr.comp(7)
    if not when and hdr.version not in _OLD_ERR:
        raise Hl7Error(101, "MSH-7 (date/time of message) is missing", ("MSH", 1, 7))
    if when and not _DTM.fullmatch(when):
        raise Hl7Error(102, f"MSH-7 {when!r} is not a date/time (YYYY[MM[DD[HH[MM[SS]]]]][+/-ZZZZ])",
                       ("MSH", 1, 7))
    for n in (15, 16):
        if hdr.comp(n) and hdr.comp(n) not in CONDITIONS:
            raise Hl7Error(103, f"MSH-{n} {hdr.comp(n)!r} is not an acknowledgment condition (AL, NE, ER, SU)",
                           ("MSH", 1, n))
    return hdr


def _is_response(text: str, hdr: Header | None) -> bool:
    """An acknowledgement or another response (it carries an MSA): answering it could start an ACK loop."""
    return hdr is not None and (hdr.comp(9) in RESPONSE_TYPES or "\rMSA" + hdr.fs in text)


def respond(text: str, application: str, error: Hl7Error | None = None) -> list[tuple[str, str]]:
    """The acknowledgements owed for a received message, in order, as (ACK text, MSA-1 code).

    - An acknowledgement (MSH-9 ACK, or any message with an MSA segment) gets none.
    - Original mode (MSH-15 and MSH-16 empty): one ACK, AA, or AR with an ERR segment.
    - Enhanced mode: the accept acknowledgement (CA; CR for an unsupported type, event, processing id or
      version; CE for any other error) when MSH-15 asks for it (AL; ER on error; SU on success), then the
      application acknowledgement (AA) when MSH-16 asks for it (AL, SU). A message refused while MSH-15
      asks for no accept ACK is refused in the application ACK (AR) if MSH-16 asks for one (AL, ER).

    `error` is one found before the message (the MLLP framing): the message is refused with it."""
    try:
        return _respond(normalise(text), application, error)
    except Exception as exc:  # noqa: BLE001 - a failure of this receiver must still be answered
        return [_ack(None, application, "AR", Hl7Error(207, f"{type(exc).__name__}: {exc}"))]


def _respond(text: str, application: str, error: Hl7Error | None) -> list[tuple[str, str]]:
    hdr = header(text)
    if _is_response(text, hdr):
        return []
    if error is None:
        try:
            check(text)
            hl7.parse(text)  # the whole message, as the application would read it
        except Hl7Error as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - anything else is this receiver's own failure
            error = Hl7Error(207, f"{type(exc).__name__}: {exc}")
    if hdr is None or not hdr.enhanced:
        return [_ack(hdr, application, "AR" if error else "AA", error)]
    accept, app = hdr.condition(15), hdr.condition(16)
    if error is not None:
        if accept in ("AL", "ER"):
            return [_ack(hdr, application, "CR" if error.code in REJECTIONS else "CE", error)]
        return [_ack(hdr, application, "AR", error)] if app in ("AL", "ER") else []
    out = [_ack(hdr, application, "CA")] if accept in ("AL", "SU") else []
    if app in ("AL", "SU"):
        out.append(_ack(hdr, application, "AA"))
    return out


def ack_for(text: str, application: str) -> tuple[str | None, str]:
    """The first acknowledgement `respond` owes for `text` and its code; (None, "") when none is owed."""
    acks = respond(text, application)
    return acks[0] if acks else (None, "")


def _b36(n: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


# MSH-10 of this process's ACKs: its start (ms, base 36), its pid, then a counter: unique per ACK (20 chars max)
_ACK_PREFIX = _b36(int(_time.time() * 1000)) + _b36(_os.getpid() % 36**3).rjust(3, "0")
_ACK_SEQ = _itertools.count()


def _ack_control_id() -> str:
    return _ACK_PREFIX + _b36(next(_ACK_SEQ) % 36**6).rjust(6, "0")


def _escape(value: str, fs: str, enc: str) -> str:
    """Text placed in one field: HL7 escape sequences for the separators, no control characters."""
    comp, rep, esc, sub = enc[:4]
    value = value.replace(esc, f"{esc}E{esc}")
    for ch, code in ((fs, "F"), (comp, "S"), (rep, "R"), (sub, "T")):
        value = value.replace(ch, f"{esc}{code}{esc}")
    return "".join(c if c.isprintable() else " " for c in value)


def _ack(hdr: Header | None, application: str, code: str, error: Hl7Error | None = None) -> tuple[str, str]:
    """(An ACK answering `hdr` (None: a message too broken to have one) from `application`, its code)."""
    fs, enc = (hdr.fs, hdr.enc) if hdr is not None and hdr.valid else ("|", _DEFAULT_ENC)
    comp, sub = enc[0], enc[3]

    def copied(n: int) -> str:
        """MSH-n of the message, as its sender wrote it when its separators are ours, else escaped."""
        if hdr is None:
            return ""
        value = hdr.get(n) if hdr.valid else _escape(hdr.get(n), fs, enc)
        return "".join(c if c.isprintable() else " " for c in value)

    version = hdr.version if hdr is not None and hdr.version in VERSIONS else _ACK_VERSION
    event = hdr.comp(9, 2) if hdr is not None and hdr.valid else ""
    msg_type = f"ACK{comp}{_escape(event, fs, enc)}" if event else "ACK"
    if event and version != "2.3":
        msg_type += f"{comp}ACK"  # MSH-9.3, the message structure, exists from v2.3.1
    proc = copied(11) if hdr is not None and hdr.comp(11) in PROCESSING_IDS else "P"
    facility = copied(6) or "XTCH"
    msh = fs.join(["MSH", enc, _escape(application, fs, enc), facility, copied(3), copied(4), _now(), "",
                   msg_type, _ack_control_id(), proc, version])
    msa = ["MSA", code, copied(10)]
    segs = [msh]
    if error is None:
        segs.append(fs.join(msa))
        return "\r".join(segs) + "\r", code
    name = ERRORS.get(error.code, "Application internal error")
    reason = _escape(error.reason[:200], fs, enc)
    where = [str(x) for x in error.where]
    if version in _OLD_ERR:  # ERR-1 (ELD): segment^sequence^field^code&text&table, the reason in MSA-3
        eld = (where + ["", "", ""])[:3] + [sub.join([str(error.code), _escape(name, fs, enc), "HL70357"])]
        segs += [fs.join(msa + [reason]), fs.join(["ERR", comp.join(eld)])]
    else:  # ERR-2 location (ERL), ERR-3 code (CWE), ERR-4 severity, ERR-8 the reason
        code_cwe = comp.join([str(error.code), _escape(name, fs, enc), "HL70357"])
        segs += [fs.join(msa), fs.join(["ERR", "", comp.join(where), code_cwe, "E", "", "", "", reason])]
    return "\r".join(segs) + "\r", code


def parse_ack(text: str) -> tuple[str, str]:
    """(MSA-1 acknowledgement code, MSA-2 control id) of an ACK."""
    msg = hl7.parse(text)
    msa = msg.segment("MSA")
    return str(msa(1)), str(msa(2))
