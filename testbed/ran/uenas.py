"""The UE's side of NAS without pycrate: read the few downlink messages a UE must understand.

A UE process should stay far below 20 MiB, and importing pycrate's 5G NAS
modules alone takes about 18 MiB. The UE's own requests need no encoder at run
time: plain NAS (no security) makes them constant, so testbed.ran.agents
encodes them with testbed.ran.nas (pycrate) into the UE's config. What comes
back is read here, by walking the information elements of TS 24.501 with their
generic formats: type 1 (IEI >= 0x80, one octet), TLV-E (IEI 0x70-0x7f, two
length octets), the few fixed-length TV ones (PDU session id, 5GMM/5GSM cause,
RQ timer), and TLV for the rest. tests/ran check every result against pycrate.
"""
from __future__ import annotations

from ipaddress import IPv4Address
from typing import NamedTuple

EPD_5GMM, EPD_5GSM = 0x7E, 0x2E
REGISTRATION_ACCEPT, REGISTRATION_REJECT, DL_NAS_TRANSPORT = 0x42, 0x44, 0x68
SESSION_ACCEPT, SESSION_REJECT = 0xC2, 0xC3
IEI_GUTI, IEI_ALLOWED_NSSAI, IEI_REJECTED_NSSAI = 0x77, 0x15, 0x11
IEI_PDU_ADDRESS, IEI_SNSSAI, IEI_DNN, IEI_QOS_FLOWS = 0x29, 0x22, 0x25, 0x79
IEI_PSI, IEI_MM_CAUSE, IEI_BACKOFF = 0x12, 0x58, 0x37
# GPRS timer 3 (TS 24.008 10.5.7.4a), the Back-off timer value's format: unit (top 3 bits) -> seconds per step;
# unit 7 is "deactivated"
TIMER3_UNITS = {3: 2, 4: 30, 5: 60, 0: 600, 1: 3600, 2: 36000, 6: 1152000}
_TV2 = {0x12, 0x56, 0x58, 0x59}  # PDU session id, RQ timer, 5GMM cause, 5GSM cause / old PDU session id

# Cause names as the core logs them (testbed.ran.nas.MmCause / SmCause, lower case with dashes).
MM_CAUSES = {7: "services-not-allowed", 62: "no-network-slices-available", 90: "payload-not-forwarded",
             91: "dnn-not-supported-in-slice"}
SM_CAUSES = {26: "insufficient-resources", 27: "missing-or-unknown-dnn", 33: "service-option-not-subscribed",
             43: "invalid-pdu-session-id", 69: "insufficient-resources-for-slice",
             70: "missing-or-unknown-dnn-in-slice"}


class NasError(ValueError):
    pass


class RegistrationAccept(NamedTuple):
    tmsi: int | None
    allowed: tuple[str, ...]  # S-NSSAIs as "sst" or "sst/sd"
    rejected: tuple[str, ...]


class RegistrationReject(NamedTuple):
    cause: int


class SessionAccept(NamedTuple):
    psi: int
    pti: int
    address: IPv4Address
    qfi: int | None
    snssai: str | None
    dnn: str | None


class SessionReject(NamedTuple):
    psi: int
    pti: int
    cause: int
    mm_cause: int | None = None
    backoff_s: int | None = None  # T3396 from the Back-off timer value IE: retry after it (None: absent/off)


class Other(NamedTuple):
    epd: int
    msg_type: int


def _ies(buf: bytes, pos: int) -> dict[int, bytes]:
    """Optional IEs from `pos` on: IEI -> value (type 1 IEs keyed by their high nibble, value = the octet)."""
    out: dict[int, bytes] = {}
    while pos < len(buf):
        iei = buf[pos]
        if iei >= 0x80:
            out.setdefault(iei & 0xF0, buf[pos:pos + 1])
            pos += 1
        elif iei in _TV2:
            out.setdefault(iei, buf[pos + 1:pos + 2])
            pos += 2
        elif iei >= 0x70:
            n = int.from_bytes(buf[pos + 1:pos + 3], "big")
            out.setdefault(iei, buf[pos + 3:pos + 3 + n])
            pos += 3 + n
        else:
            n = buf[pos + 1] if pos + 1 < len(buf) else 0
            out.setdefault(iei, buf[pos + 2:pos + 2 + n])
            pos += 2 + n
        if pos > len(buf):
            raise NasError(f"IE {iei:#04x} runs past the message")
    return out


def snssai_str(value: bytes) -> str:
    """An S-NSSAI value (its SST, then a 3-octet SD if present) as plan.Snssai prints it."""
    if len(value) >= 4:
        return f"{value[0]}/{value[1:4].hex()}"
    return str(value[0])


def _nssai(value: bytes | None) -> tuple[str, ...]:
    out, pos = [], 0
    while value and pos < len(value):
        n = value[pos]
        out.append(snssai_str(value[pos + 1:pos + 1 + n]))
        pos += 1 + n
    return tuple(out)


def _rejected_nssai(value: bytes | None) -> tuple[str, ...]:
    """Rejected NSSAI: each entry is one octet (length << 4 | cause), then the S-NSSAI."""
    out, pos = [], 0
    while value and pos < len(value):
        n = value[pos] >> 4
        out.append(snssai_str(value[pos + 1:pos + 1 + n]))
        pos += 1 + n
    return tuple(out)


def decode(buf: bytes) -> RegistrationAccept | RegistrationReject | SessionAccept | SessionReject | Other:
    """A plain (unprotected) downlink NAS message; a DL NAS Transport yields the 5GSM message it carries."""
    try:
        return _decode(bytes(buf))
    except (IndexError, ValueError) as exc:
        raise NasError(f"cannot read NAS {bytes(buf[:16]).hex()}: {exc}") from exc


def _decode(buf: bytes):
    if len(buf) < 3:
        raise NasError("shorter than a NAS header")
    if buf[0] == EPD_5GMM:
        if buf[1] & 0x0F in (1, 3):  # integrity protected, not ciphered: the plain message follows MAC and SQN
            return _decode(buf[7:])
        if buf[1] & 0x0F:
            raise NasError("ciphered NAS: the emulation runs without NAS security")
        kind = buf[2]
        if kind == REGISTRATION_ACCEPT:
            ies = _ies(buf, 3 + 1 + buf[3])  # after the 5GS registration result (LV)
            guti = ies.get(IEI_GUTI)
            tmsi = int.from_bytes(guti[-4:], "big") if guti and len(guti) >= 10 else None
            return RegistrationAccept(tmsi, _nssai(ies.get(IEI_ALLOWED_NSSAI)),
                                      _rejected_nssai(ies.get(IEI_REJECTED_NSSAI)))
        if kind == REGISTRATION_REJECT:
            return RegistrationReject(buf[3])
        if kind == DL_NAS_TRANSPORT:
            n = int.from_bytes(buf[4:6], "big")
            inner = buf[6:6 + n]
            ies = _ies(buf, 6 + n)
            msg = _decode(inner) if (buf[3] & 0x0F) == 1 else Other(EPD_5GMM, kind)  # N1 SM information
            if isinstance(msg, SessionReject) and IEI_MM_CAUSE in ies:
                msg = msg._replace(mm_cause=ies[IEI_MM_CAUSE][0])
            return msg
        return Other(EPD_5GMM, kind)
    if buf[0] == EPD_5GSM:
        psi, pti, kind = buf[1], buf[2], buf[3]
        if kind == SESSION_REJECT:
            backoff = _ies(buf, 5).get(IEI_BACKOFF)
            return SessionReject(psi, pti, buf[4], backoff_s=timer3_seconds(backoff[0]) if backoff else None)
        if kind == SESSION_ACCEPT:
            pos = 5  # after the SSC mode / PDU session type octet
            pos += 2 + int.from_bytes(buf[pos:pos + 2], "big")  # authorized QoS rules (LV-E)
            pos += 1 + buf[pos]  # session AMBR (LV)
            ies = _ies(buf, pos)
            addr = ies.get(IEI_PDU_ADDRESS)
            if not addr or (addr[0] & 0x07) != 1 or len(addr) < 5:
                raise NasError("PDU Session Establishment Accept without an IPv4 PDU address")
            flows = ies.get(IEI_QOS_FLOWS)
            snssai = ies.get(IEI_SNSSAI)
            dnn = ies.get(IEI_DNN)
            return SessionAccept(psi, pti, IPv4Address(addr[1:5]), flows[0] & 0x3F if flows else None,
                                 snssai_str(snssai) if snssai else None, _dnn(dnn) if dnn else None)
        return Other(EPD_5GSM, kind)
    raise NasError(f"extended protocol discriminator {buf[0]:#04x} is neither 5GMM nor 5GSM")


def timer3_seconds(octet: int) -> int | None:
    """A GPRS timer 3 octet in seconds; None when deactivated."""
    unit = octet >> 5
    return None if unit == 7 else (octet & 0x1F) * TIMER3_UNITS[unit]


def timer3_value(seconds: int) -> tuple[int, int]:
    """(unit, value) of the finest GPRS timer 3 unit that holds `seconds` (rounded up) in its 5 bits."""
    return next((unit, -(-seconds // step)) for unit, step in TIMER3_UNITS.items() if -(-seconds // step) <= 31)


def _dnn(value: bytes) -> str:
    """A DNN in DNS label form (length-prefixed labels) as dotted text."""
    labels, pos = [], 0
    while pos < len(value):
        n = value[pos]
        labels.append(value[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    return ".".join(labels)
