"""Real 5G NAS messages (TS 24.501) for the emulated registration and PDU sessions, with pycrate.

The built-in core and UEs exchange these bytes, so a capture of the emulation
decodes in Wireshark like a real one and the prober can read the causes. Only
what the emulation needs is built, in plain NAS (security header type 0): the
emulation runs no 5G-AKA or NAS security, which a real network would do between
the Registration Request and the Accept.

5GMM: Registration Request (SUCI with the null scheme, requested NSSAI),
Registration Accept (5G-GUTI, TAI list, allowed and rejected NSSAI),
Registration Reject (5GMM cause, rejected NSSAI), UL/DL NAS Transport (carrying
a 5GSM message with its PDU session id, S-NSSAI and DNN).
5GSM: PDU Session Establishment Request / Accept (PDU address, default QoS rule
and QoS flow description with the 5QI, session AMBR, S-NSSAI, DNN) / Reject.

`decode(buf)` turns any of them back into one of the dataclasses below.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address
from typing import Any, Union

from testbed.ran.snssai import Snssai
from testbed.ran.uenas import timer3_seconds, timer3_value

# pycrate warns at import that CryptoMobile (NAS security) is missing; plain NAS needs none of it.
logging.getLogger("pycrate_mobile.TS24501_FGMM").setLevel(logging.ERROR)
logging.getLogger("pycrate_mobile.TS24301_EMM").setLevel(logging.ERROR)

from pycrate_mobile import TS24501_FGMM as FGMM  # noqa: E402
from pycrate_mobile import TS24501_FGSM as FGSM  # noqa: E402
from pycrate_mobile.NAS5G import parse_NAS5G  # noqa: E402
from pycrate_mobile.TS24501_IE import FGSID, FGSIDFMT, FGSIDTYPE  # noqa: E402


class MmCause(IntEnum):
    """5GMM causes the core sends (TS 24.501 9.11.3.2)."""

    SERVICES_NOT_ALLOWED = 7  # unknown subscriber: the UDM has no such SUPI (Open5GS answers the same)
    NO_NETWORK_SLICES_AVAILABLE = 62  # none of the requested S-NSSAIs is subscribed
    PAYLOAD_NOT_FORWARDED = 90
    DNN_NOT_SUPPORTED_IN_SLICE = 91


class SmCause(IntEnum):
    """5GSM causes the core sends (TS 24.501 9.11.4.2)."""

    INSUFFICIENT_RESOURCES = 26
    MISSING_OR_UNKNOWN_DNN = 27
    SERVICE_OPTION_NOT_SUBSCRIBED = 33  # the S-NSSAI is not in the subscription
    INVALID_PDU_SESSION_ID = 43
    INSUFFICIENT_RESOURCES_FOR_SLICE = 69
    MISSING_OR_UNKNOWN_DNN_IN_SLICE = 70  # the S-NSSAI is subscribed, but not with this DNN


PAYLOAD_N1_SM = 1  # payload container type: N1 SM information (a 5GSM message)
REQUEST_INITIAL = 1  # request type: initial request
SESSION_TYPE_IPV4 = 1
SSC_MODE_1 = 1
INTEGRITY_FULL_RATE = 0xFF  # integrity protection maximum data rate: full data rate
AMBR_UNIT_1MBPS = 6


@dataclass(frozen=True)
class RegistrationRequest:
    supi: str  # imsi-<15 digits>, recovered from the null-scheme SUCI
    nssai: tuple[Snssai, ...] = ()


@dataclass(frozen=True)
class RegistrationAccept:
    plmn: str
    amf_region: int
    amf_set: int
    amf_pointer: int
    tmsi: int
    tacs: tuple[int, ...]
    allowed: tuple[Snssai, ...]
    rejected: tuple[Snssai, ...] = ()


@dataclass(frozen=True)
class RegistrationReject:
    cause: int
    rejected: tuple[Snssai, ...] = ()


@dataclass(frozen=True)
class SessionRequest:
    """PDU Session Establishment Request, with the routing information of its UL NAS Transport."""

    psi: int
    pti: int
    snssai: Snssai | None = None
    dnn: str | None = None


@dataclass(frozen=True)
class SessionAccept:
    psi: int
    pti: int
    address: IPv4Address
    qfi: int
    fiveqi: int
    snssai: Snssai
    dnn: str
    ambr_mbps: tuple[int, int] = (0, 0)  # downlink, uplink


@dataclass(frozen=True)
class SessionReject:
    psi: int
    pti: int
    cause: int
    mm_cause: int | None = None  # 5GMM cause of the DL NAS Transport that carried it, if any
    backoff_s: int | None = None  # its Back-off timer value (T3396), if any


@dataclass(frozen=True)
class Unparsed:
    """A message decode() does not turn into a dataclass: its pycrate name and value."""

    name: str
    value: Any = field(default=None, compare=False)


Message = Union[RegistrationRequest, RegistrationAccept, RegistrationReject, SessionRequest, SessionAccept,
                SessionReject, Unparsed]


class NasError(ValueError):
    """Bytes that are not a NAS message this module understands."""


# ---------------------------------------------------------------- encoders

def _snssai_val(s: Snssai) -> dict:
    return {"SST": s.sst} if s.sd is None else {"SST": s.sst, "SD": s.sd_int}


def _nssai_val(slices: tuple[Snssai, ...] | list[Snssai]) -> list[dict]:
    return [{"SNSSAI": _snssai_val(s)} for s in slices]


def _split_supi(supi: str, mnc_len: int) -> tuple[str, str]:
    digits = supi.removeprefix("imsi-")
    if not digits.isdigit() or len(digits) != 15:
        raise NasError(f"{supi!r} is not imsi- and 15 digits")
    return digits[: 3 + mnc_len], digits[3 + mnc_len:]


def registration_request(supi: str, nssai: tuple[Snssai, ...] | list[Snssai], mnc_len: int = 2) -> bytes:
    """Initial registration with the SUPI concealed by the null scheme (as UERANSIM's protectionScheme 0)."""
    plmn, msin = _split_supi(supi, mnc_len)
    suci = FGSID(val={"Type": FGSIDTYPE.SUPI, "Fmt": FGSIDFMT.IMSI, "Value": {
        "PLMN": plmn, "RoutingInd": "0000", "ProtSchemeID": 0, "HNPKID": 0, "Output": msin}})
    msg = FGMM.FGMMRegistrationRequest(val={
        "NAS_KSI": {"TSC": 0, "Value": 7},  # no key available
        "5GSRegType": {"FOR": 1, "Value": 1},  # follow-on request pending, initial registration
        "UESecCap": {"5G-EA0": 1, "5G-EA1_128": 1, "5G-EA2_128": 1, "5G-IA0": 1, "5G-IA1_128": 1, "5G-IA2_128": 1},
        "5GSID": suci.get_val(),
        **({"NSSAI": _nssai_val(nssai)} if nssai else {}),
    })
    return msg.to_bytes()


def registration_accept(plmn: str, tacs: tuple[int, ...] | list[int], allowed: tuple[Snssai, ...] | list[Snssai],
                        tmsi: int, rejected: tuple[Snssai, ...] | list[Snssai] = (), amf_region: int = 2,
                        amf_set: int = 1, amf_pointer: int = 0) -> bytes:
    guti = FGSID(val={"Type": FGSIDTYPE.GUTI, "PLMN": plmn, "AMFRegionID": amf_region, "AMFSetID": amf_set,
                      "AMFPtr": amf_pointer, "5GTMSI": tmsi})
    val: dict[str, Any] = {
        "5GSRegResult": {"Value": 1},  # 3GPP access
        "GUTI": guti.get_val(),
        "5GSTAIList": [{"Type": 0, "PTAI": {"PLMN": plmn, "TACs": list(tacs)}}],
        "AllowedNSSAI": _nssai_val(allowed),
    }
    if rejected:
        val["RejectedNSSAI"] = [{"Cause": 0, "SNSSAI": _snssai_val(s)} for s in rejected]
    return FGMM.FGMMRegistrationAccept(val=val).to_bytes()


def registration_reject(cause: int, rejected: tuple[Snssai, ...] | list[Snssai] = ()) -> bytes:
    val: dict[str, Any] = {"5GMMCause": int(cause)}
    if rejected:  # rejected S-NSSAI cause 0: not available in the current PLMN
        val["RejectedNSSAI"] = [{"Cause": 0, "SNSSAI": _snssai_val(s)} for s in rejected]
    return FGMM.FGMMRegistrationReject(val=val).to_bytes()


def session_request(psi: int, pti: int) -> bytes:
    """The 5GSM PDU Session Establishment Request itself (IPv4, SSC mode 1)."""
    return FGSM.FGSMPDUSessionEstabRequest(val={
        "5GSMHeader": {"PDUSessID": psi, "PTI": pti},
        "IntegrityProtMaxDataRate": {"UPUL": INTEGRITY_FULL_RATE, "UPDL": INTEGRITY_FULL_RATE},
        "PDUSessType": {"Value": SESSION_TYPE_IPV4},
        "SSCMode": {"Value": SSC_MODE_1},
    }).to_bytes()


def ul_nas_transport(sm: bytes, psi: int, snssai: Snssai | None = None, dnn: str | None = None) -> bytes:
    """A 5GSM message on its way to the SMF, with the routing information the AMF reads."""
    val: dict[str, Any] = {"PayloadContainerType": {"V": PAYLOAD_N1_SM}, "PayloadContainer": sm,
                           "PDUSessID": psi, "RequestType": {"Value": REQUEST_INITIAL}}
    if snssai is not None:
        val["SNSSAI"] = _snssai_val(snssai)
    if dnn is not None:
        val["DNN"] = dnn
    return _with_payload(FGMM.FGMMULNASTransport, val, sm)


def dl_nas_transport(sm: bytes, psi: int, mm_cause: int | None = None) -> bytes:
    val: dict[str, Any] = {"PayloadContainerType": {"V": PAYLOAD_N1_SM}, "PDUSessID": psi}
    if mm_cause is not None:
        val["5GMMCause"] = int(mm_cause)
    return _with_payload(FGMM.FGMMDLNASTransport, val, sm)


def _with_payload(cls, val: dict, sm: bytes) -> bytes:
    val = {k: v for k, v in val.items() if k != "PayloadContainer"}
    msg = cls(val=val)
    msg["PayloadContainer"]["V"].set_val(sm)
    return msg.to_bytes()


def session_accept(psi: int, pti: int, address: IPv4Address, qfi: int, fiveqi: int, snssai: Snssai, dnn: str,
                   ambr_mbps: tuple[int, int] = (1000, 1000)) -> bytes:
    """Accept with one default QoS rule (match-all, both directions) on QoS flow `qfi`, described by its 5QI."""
    return FGSM.FGSMPDUSessionEstabAccept(val={
        "5GSMHeader": {"PDUSessID": psi, "PTI": pti},
        "SSCMode": {"Value": SSC_MODE_1},
        "PDUSessType": {"Value": SESSION_TYPE_IPV4},
        "QoSRules": [{"ID": 1, "OpCode": 1, "DQR": 1, "PktFilterList": [
            {"Dir": 3, "Id": 1, "PktFilter": [{"Type": 1}]}], "Precedence": 255, "Flow": {"QFI": qfi}}],
        "SessAMBR": {"DLUnit": AMBR_UNIT_1MBPS, "DL": ambr_mbps[0], "ULUnit": AMBR_UNIT_1MBPS, "UL": ambr_mbps[1]},
        "PDUAddress": {"Type": 1, "Addr": address.packed},
        "SNSSAI": _snssai_val(snssai),
        "QoSFlowDesc": [{"QFI": qfi, "OpCode": 1, "Params": [{"Type": 1, "Content": fiveqi}]}],
        "DNN": dnn,
    }).to_bytes()


def session_reject(psi: int, pti: int, cause: int, backoff_s: int | None = None) -> bytes:
    """A PDU Session Establishment Reject; with `backoff_s`, its Back-off timer value IE (T3396: the UE may
    ask again after it, as for a core short of resources for a moment)."""
    val: dict[str, Any] = {"5GSMHeader": {"PDUSessID": psi, "PTI": pti}, "5GSMCause": int(cause)}
    if backoff_s is not None:
        unit, value = timer3_value(backoff_s)
        val["BackOffTimer"] = {"Unit": unit, "Value": value}
    return FGSM.FGSMPDUSessionEstabReject(val=val).to_bytes()


# ---------------------------------------------------------------- decoder

def decode(buf: bytes) -> Message:
    """Any message above back into its dataclass (a NAS transport yields the 5GSM message it carries)."""
    msg, err = parse_NAS5G(buf)
    if err or msg is None:
        raise NasError(f"not a 5G NAS message (pycrate error {err}): {buf[:16].hex()}")
    return _from_pycrate(msg)


def _present(msg, name: str):
    ie = msg[name]
    return None if ie.get_trans() else ie


def _value(ie):
    """The inner value element of a TLV/LV/TV information element."""
    return ie[-1]


def _snssai(elt) -> Snssai:
    sd = elt["SD"]
    return Snssai(elt["SST"].get_val(), None if sd.get_trans() else f"{sd.get_val():06x}")


def _nssai(msg, name: str) -> tuple[Snssai, ...]:
    ie = _present(msg, name)
    return () if ie is None else tuple(_snssai(s["SNSSAI"]) for s in _value(ie))


def _from_pycrate(msg) -> Message:
    name = msg._name
    if name == "5GMMRegistrationRequest":
        ident = _value(msg["5GSID"])
        if ident["Type"].get_val() != FGSIDTYPE.SUPI or ident["Value"]["ProtSchemeID"].get_val() != 0:
            raise NasError("registration without a null-scheme SUCI: the emulated core cannot read the SUPI")
        plmn = ident["Value"]["PLMN"].decode()
        msin = ident["Value"]["Output"].get_alt().decode()
        return RegistrationRequest(f"imsi-{plmn}{msin}", _nssai(msg, "NSSAI"))
    if name == "5GMMRegistrationAccept":
        guti = _value(msg["GUTI"])
        tacs: list[int] = []
        for ptai in _value(msg["5GSTAIList"]):
            tacs += _tacs(ptai)
        return RegistrationAccept(guti["PLMN"].decode(), guti["AMFRegionID"].get_val(), guti["AMFSetID"].get_val(),
                                  guti["AMFPtr"].get_val(), guti["5GTMSI"].get_val(), tuple(tacs),
                                  _nssai(msg, "AllowedNSSAI"), _rejected(msg))
    if name == "5GMMRegistrationReject":
        return RegistrationReject(msg["5GMMCause"][-1].get_val(), _rejected(msg))
    if name in ("5GMMULNASTransport", "5GMMDLNASTransport"):
        return _transport(msg)
    if name == "5GSMPDUSessionEstabRequest":
        hdr = msg["5GSMHeader"]
        return SessionRequest(hdr["PDUSessID"].get_val(), hdr["PTI"].get_val())
    if name == "5GSMPDUSessionEstabAccept":
        return _accept(msg)
    if name == "5GSMPDUSessionEstabReject":
        hdr = msg["5GSMHeader"]
        backoff = _present(msg, "BackOffTimer")
        return SessionReject(hdr["PDUSessID"].get_val(), hdr["PTI"].get_val(), msg["5GSMCause"][-1].get_val(),
                             backoff_s=None if backoff is None else timer3_seconds(_value(backoff).to_bytes()[0]))
    return Unparsed(name, msg.get_val())


def _tacs(ptai) -> list[int]:
    body = ptai["PTAI"].get_alt() if hasattr(ptai["PTAI"], "get_alt") else ptai["PTAI"]
    kind = ptai["Type"].get_val()
    if kind == 0:
        return [t.get_val() for t in body["TACs"]]
    if kind == 1:
        return [body["TAC1"].get_val() + i for i in range(body["Num"].get_val() + 1)]
    return [t["TAC"].get_val() for t in body]


def _rejected(msg) -> tuple[Snssai, ...]:
    ie = _present(msg, "RejectedNSSAI")
    return () if ie is None else tuple(_snssai(r["SNSSAI"]) for r in _value(ie))


def _transport(msg) -> Message:
    inner = msg["PayloadContainer"][-1]
    sm = inner if not isinstance(inner.get_val(), bytes) else parse_NAS5G(inner.get_val())[0]
    decoded = _from_pycrate(sm) if sm is not None else Unparsed("empty")
    if isinstance(decoded, SessionRequest):
        snssai = _present(msg, "SNSSAI")
        dnn = _present(msg, "DNN")
        return SessionRequest(decoded.psi, decoded.pti, _snssai(_value(snssai)) if snssai is not None else None,
                              _value(dnn).decode() if dnn is not None else None)
    cause = _present(msg, "5GMMCause") if msg._name == "5GMMDLNASTransport" else None
    if isinstance(decoded, SessionReject) and cause is not None:
        return dataclasses.replace(decoded, mm_cause=cause[-1].get_val())
    return decoded


def _accept(msg) -> SessionAccept:
    hdr = msg["5GSMHeader"]
    rule = _value(msg["QoSRules"])[0]
    fiveqi = 0
    flows = _present(msg, "QoSFlowDesc")
    if flows is not None:
        for param in _value(flows)[0]["Params"]:
            if param["Type"].get_val() == 1:
                fiveqi = param["Content"].get_val()
    ambr = _value(msg["SessAMBR"])
    snssai = _present(msg, "SNSSAI")
    dnn = _present(msg, "DNN")
    return SessionAccept(
        psi=hdr["PDUSessID"].get_val(), pti=hdr["PTI"].get_val(),
        address=IPv4Address(_value(msg["PDUAddress"])["Addr"].get_val()),
        qfi=rule["Flow"]["QFI"].get_val(), fiveqi=fiveqi,
        snssai=_snssai(_value(snssai)) if snssai is not None else Snssai(0),
        dnn=_value(dnn).decode() if dnn is not None else "",
        ambr_mbps=(ambr["DL"].get_val(), ambr["UL"].get_val()))
