"""NGAP (TS 38.413, APER) for the emulated N2: the messages that carry NAS and set up GTP-U tunnels.

With pycrate's NGAP ASN.1 module. A capture of the emulated N2 (over the
transport the platform allows: SCTP where the kernel has it) then dissects as
NGAP, and the tunnel endpoints in it are the plan's:

- InitialUEMessage (gNB -> AMF): the UE's first NAS message, its cell (NR-CGI)
  and tracking area;
- PDUSessionResourceSetupRequest (AMF -> gNB): per session the NAS accept, the
  S-NSSAI and a PDUSessionResourceSetupRequestTransfer carrying the UL tunnel
  (UPF address + UL TEID), the session type and the QoS flow (QFI, 5QI);
- PDUSessionResourceSetupResponse (gNB -> AMF): per session the DL tunnel (gNB
  address + DL TEID) and the QoS flow it accepted;
- NGSetupRequest / NGSetupResponse / NGSetupFailure: the gNB introduces itself
  (global gNB id, name, tracking area and the slices it supports), the AMF
  answers with its name, GUAMI and the slices of the PLMN;
- UplinkNASTransport / DownlinkNASTransport: NAS of a UE already known on N2.

`decode(buf)` returns a `Ngap` with the fields the emulation and the tests read.
pycrate's ASN.1 types are module-level objects that hold the value being coded,
so every public function here runs under one lock (safe from several threads).
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from pycrate_asn1dir import NGAP

from testbed.ran.snssai import Snssai

if TYPE_CHECKING:
    from testbed.ran.plan import Session

PROC_INITIAL_UE_MESSAGE = 15
PROC_PDU_SESSION_RESOURCE_SETUP = 29
PROC_PDU_SESSION_RESOURCE_MODIFY = 26
PROC_NG_SETUP = 21
PROC_DOWNLINK_NAS_TRANSPORT = 4
PROC_UPLINK_NAS_TRANSPORT = 46
_C = NGAP.NGAP_Constants
ID_AMF_UE = _C.id_AMF_UE_NGAP_ID()
ID_RAN_UE = _C.id_RAN_UE_NGAP_ID()
ID_NAS_PDU = _C.id_NAS_PDU()
ID_ULI = _C.id_UserLocationInformation()
ID_RRC_CAUSE = _C.id_RRCEstablishmentCause()
ID_SETUP_LIST_REQ = _C.id_PDUSessionResourceSetupListSUReq()
ID_SETUP_LIST_RES = _C.id_PDUSessionResourceSetupListSURes()
ID_AMBR = _C.id_PDUSessionAggregateMaximumBitRate()
ID_UL_TNL = _C.id_UL_NGU_UP_TNLInformation()
ID_SESSION_TYPE = _C.id_PDUSessionType()
ID_QOS_FLOWS = _C.id_QosFlowSetupRequestList()
ID_GLOBAL_RAN_NODE = _C.id_GlobalRANNodeID()
ID_RAN_NODE_NAME = _C.id_RANNodeName()
ID_SUPPORTED_TAS = _C.id_SupportedTAList()
ID_PAGING_DRX = _C.id_DefaultPagingDRX()
ID_AMF_NAME = _C.id_AMFName()
ID_SERVED_GUAMIS = _C.id_ServedGUAMIList()
ID_AMF_CAPACITY = _C.id_RelativeAMFCapacity()
ID_PLMN_SUPPORT = _C.id_PLMNSupportList()
ID_CAUSE = _C.id_Cause()
ID_MODIFY_LIST_REQ = _C.id_PDUSessionResourceModifyListModReq()
ID_MODIFY_LIST_RES = _C.id_PDUSessionResourceModifyListModRes()
ID_UL_TNL_MODIFY = _C.id_UL_NGU_UP_TNLModifyList()
_LOCK = threading.RLock()


def _locked(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return fn(*args, **kwargs)
    return wrapper


@dataclass(frozen=True)
class Tunnel:
    """One GTP-U endpoint: the address packets are sent to and the TEID they carry."""

    address: IPv4Address
    teid: int


@dataclass(frozen=True)
class SessionSetup:
    psi: int
    snssai: Snssai | None = None
    nas: bytes = b""
    ul: Tunnel | None = None  # in a request: where the gNB sends uplink G-PDUs
    dl: Tunnel | None = None  # in a response: where the UPF sends downlink G-PDUs
    qfi: int | None = None
    fiveqi: int | None = None


@dataclass(frozen=True)
class Ngap:
    procedure: str  # "InitialUEMessage", "PDUSessionResourceSetupRequest", ..., "NGSetupRequest", ...
    ran_ue_id: int | None = None
    amf_ue_id: int | None = None
    nas: bytes = b""
    plmn: str | None = None
    nci: int | None = None
    tac: int | None = None
    sessions: tuple[SessionSetup, ...] = field(default_factory=tuple)
    gnb_id: int | None = None  # NG setup request: the global gNB id (its bits)
    name: str | None = None  # NG setup: the RAN node's or the AMF's name
    slices: tuple[Snssai, ...] = ()  # NG setup: supported (request) or served (response) S-NSSAIs
    cause: str | None = None  # NG setup failure: "group/value", e.g. "misc/unknown-PLMN-or-SNPN"


def _plmn_bytes(plmn: str) -> bytes:
    """MCC/MNC as TS 24.008 packs them (BCD, nibble swapped, F filler for a 2-digit MNC)."""
    mcc, mnc = plmn[:3], plmn[3:]
    mnc3 = mnc[2] if len(mnc) == 3 else "f"
    return bytes.fromhex(mcc[1] + mcc[0] + mnc3 + mcc[2] + mnc[1] + mnc[0])


def _plmn_str(b: bytes) -> str:
    h = b.hex()
    mcc = h[1] + h[0] + h[3]
    mnc = h[5] + h[4] + ("" if h[2] == "f" else h[2])
    return mcc + mnc


def _snssai(s: Snssai) -> dict:
    return {"sST": bytes([s.sst])} if s.sd is None else {"sST": bytes([s.sst]), "sD": bytes.fromhex(s.sd)}


def _ip_bits(address: IPv4Address) -> tuple[int, int]:
    return int(address), 32  # a BIT STRING as pycrate holds it: (value, length in bits)


def _gtp_tunnel(t: Tunnel) -> tuple[str, dict]:
    return ("gTPTunnel", {"transportLayerAddress": _ip_bits(t.address), "gTP-TEID": t.teid.to_bytes(4, "big")})


_IGNORED_PROCEDURES = (PROC_INITIAL_UE_MESSAGE, PROC_DOWNLINK_NAS_TRANSPORT, PROC_UPLINK_NAS_TRANSPORT)


def _encode(kind: str, proc: int, name: str, ies: list[tuple[int, str, str, object]]) -> bytes:
    pdu = NGAP.NGAP_PDU_Descriptions.NGAP_PDU
    pdu.set_val((kind, {"procedureCode": proc, "criticality": "ignore" if proc in _IGNORED_PROCEDURES else "reject",
                        "value": (name, {"protocolIEs": [
                            {"id": i, "criticality": crit, "value": (typ, val)} for i, crit, typ, val in ies]})}))
    return pdu.to_aper()


def _session_list(kind: str, proc: int, name: str, amf_ue_id: int, ran_ue_id: int, list_id: int, list_type: str,
                  items: list[dict]) -> bytes:
    """A UE-associated message carrying a list of PDU session items: its two NGAP ids, then the list
    (criticality reject in a request, ignore in an answer, as TS 38.413 gives them)."""
    crit = "reject" if kind == "initiatingMessage" else "ignore"
    return _encode(kind, proc, name, [
        (ID_AMF_UE, crit, "AMF-UE-NGAP-ID", amf_ue_id),
        (ID_RAN_UE, crit, "RAN-UE-NGAP-ID", ran_ue_id),
        (list_id, crit, list_type, items),
    ])


@_locked
def initial_ue_message(ran_ue_id: int, nas: bytes, plmn: str, nci: int, tac: int) -> bytes:
    ploc = _plmn_bytes(plmn)
    uli = ("userLocationInformationNR", {"nR-CGI": {"pLMNIdentity": ploc, "nRCellIdentity": (nci, 36)},
                                         "tAI": {"pLMNIdentity": ploc, "tAC": tac.to_bytes(3, "big")}})
    return _encode("initiatingMessage", PROC_INITIAL_UE_MESSAGE, "InitialUEMessage", [
        (ID_RAN_UE, "reject", "RAN-UE-NGAP-ID", ran_ue_id),
        (ID_NAS_PDU, "reject", "NAS-PDU", nas),
        (ID_ULI, "reject", "UserLocationInformation", uli),
        (ID_RRC_CAUSE, "ignore", "RRCEstablishmentCause", "mo-Signalling"),
    ])


@_locked
def setup_request_transfer(session: Session, upf_address: IPv4Address, ambr_bps: int = 1_000_000_000) -> bytes:
    """PDUSessionResourceSetupRequestTransfer: the UL tunnel at the UPF, IPv4, one non-GBR QoS flow."""
    transfer = NGAP.NGAP_IEs.PDUSessionResourceSetupRequestTransfer
    flow = {"qosFlowIdentifier": session.qfi, "qosFlowLevelQosParameters": {
        "qosCharacteristics": ("nonDynamic5QI", {"fiveQI": session.fiveqi}),
        "allocationAndRetentionPriority": {"priorityLevelARP": 8, "pre-emptionCapability": "shall-not-trigger-pre-emption",
                                           "pre-emptionVulnerability": "not-pre-emptable"}}}
    transfer.set_val({"protocolIEs": [
        {"id": ID_AMBR, "criticality": "reject", "value": ("PDUSessionAggregateMaximumBitRate", {
            "pDUSessionAggregateMaximumBitRateDL": ambr_bps, "pDUSessionAggregateMaximumBitRateUL": ambr_bps})},
        {"id": ID_UL_TNL, "criticality": "reject",
         "value": ("UPTransportLayerInformation", _gtp_tunnel(Tunnel(upf_address, session.ul_teid)))},
        {"id": ID_SESSION_TYPE, "criticality": "reject", "value": ("PDUSessionType", "ipv4")},
        {"id": ID_QOS_FLOWS, "criticality": "reject", "value": ("QosFlowSetupRequestList", [flow])},
    ]})
    return transfer.to_aper()


@_locked
def setup_request(amf_ue_id: int, ran_ue_id: int, items: list[tuple[Session, bytes, IPv4Address]]) -> bytes:
    """One PDUSessionResourceSetupRequest for (session, its NAS accept, its UPF's N3 address) items."""
    setup = [{"pDUSessionID": s.psi, "pDUSessionNAS-PDU": nas_pdu, "s-NSSAI": _snssai(s.snssai),
              "pDUSessionResourceSetupRequestTransfer": setup_request_transfer(s, upf)} for s, nas_pdu, upf in items]
    return _session_list("initiatingMessage", PROC_PDU_SESSION_RESOURCE_SETUP, "PDUSessionResourceSetupRequest",
                         amf_ue_id, ran_ue_id, ID_SETUP_LIST_REQ, "PDUSessionResourceSetupListSUReq", setup)


@_locked
def setup_response(amf_ue_id: int, ran_ue_id: int, items: list[tuple[Session, IPv4Address]]) -> bytes:
    """The gNB's answer: per (session, gNB N3 address) the DL tunnel and the accepted QoS flow."""
    return setup_response_tunnels(amf_ue_id, ran_ue_id, [(s.psi, s.qfi, Tunnel(gnb, s.dl_teid)) for s, gnb in items])


@_locked
def setup_response_tunnels(amf_ue_id: int, ran_ue_id: int, items: list[tuple[int, int, Tunnel]]) -> bytes:
    """The same answer from what a gNB knows: per (PDU session id, QFI, DL tunnel it allocated)."""
    transfer = NGAP.NGAP_IEs.PDUSessionResourceSetupResponseTransfer
    done = []
    for psi, qfi, dl in items:
        transfer.set_val({"dLQosFlowPerTNLInformation": {"uPTransportLayerInformation": _gtp_tunnel(dl),
                                                         "associatedQosFlowList": [{"qosFlowIdentifier": qfi}]}})
        done.append({"pDUSessionID": psi, "pDUSessionResourceSetupResponseTransfer": transfer.to_aper()})
    return _session_list("successfulOutcome", PROC_PDU_SESSION_RESOURCE_SETUP, "PDUSessionResourceSetupResponse",
                         amf_ue_id, ran_ue_id, ID_SETUP_LIST_RES, "PDUSessionResourceSetupListSURes", done)


@_locked
def modify_request(amf_ue_id: int, ran_ue_id: int, items: list[tuple[int, Tunnel, Tunnel]]) -> bytes:
    """PDUSessionResourceModifyRequest moving sessions' uplink to another UPF: per (PDU session id, new UL
    tunnel, the gNB's DL tunnel, unchanged) one UL NG-U UP TNL Modify List item (TS 38.413 9.3.4.3)."""
    transfer = NGAP.NGAP_IEs.PDUSessionResourceModifyRequestTransfer
    out = []
    for psi, ul, dl in items:
        transfer.set_val({"protocolIEs": [
            {"id": ID_UL_TNL_MODIFY, "criticality": "reject", "value": ("UL-NGU-UP-TNLModifyList", [
                {"uL-NGU-UP-TNLInformation": _gtp_tunnel(ul), "dL-NGU-UP-TNLInformation": _gtp_tunnel(dl)}])}]})
        out.append({"pDUSessionID": psi, "pDUSessionResourceModifyRequestTransfer": transfer.to_aper()})
    return _session_list("initiatingMessage", PROC_PDU_SESSION_RESOURCE_MODIFY, "PDUSessionResourceModifyRequest",
                         amf_ue_id, ran_ue_id, ID_MODIFY_LIST_REQ, "PDUSessionResourceModifyListModReq", out)


@_locked
def modify_response(amf_ue_id: int, ran_ue_id: int, items: list[tuple[int, Tunnel]]) -> bytes:
    """The gNB's answer: per (PDU session id, the UL tunnel it now sends to) a modified item."""
    transfer = NGAP.NGAP_IEs.PDUSessionResourceModifyResponseTransfer
    out = []
    for psi, ul in items:
        transfer.set_val({"uL-NGU-UP-TNLInformation": _gtp_tunnel(ul)})
        out.append({"pDUSessionID": psi, "pDUSessionResourceModifyResponseTransfer": transfer.to_aper()})
    return _session_list("successfulOutcome", PROC_PDU_SESSION_RESOURCE_MODIFY, "PDUSessionResourceModifyResponse",
                         amf_ue_id, ran_ue_id, ID_MODIFY_LIST_RES, "PDUSessionResourceModifyListModRes", out)


def _uli(plmn: str, nci: int, tac: int) -> tuple[str, dict]:
    ploc = _plmn_bytes(plmn)
    return ("userLocationInformationNR", {"nR-CGI": {"pLMNIdentity": ploc, "nRCellIdentity": (nci, 36)},
                                          "tAI": {"pLMNIdentity": ploc, "tAC": tac.to_bytes(3, "big")}})


@_locked
def ng_setup_request(gnb_id: int, plmn: str, tac: int, slices: list[Snssai] | tuple[Snssai, ...], name: str,
                     gnb_id_bits: int = 32) -> bytes:
    """NGSetupRequest: the gNB's global id, name, its one tracking area and the slices it supports there."""
    ploc = _plmn_bytes(plmn)
    return _encode("initiatingMessage", PROC_NG_SETUP, "NGSetupRequest", [
        (ID_GLOBAL_RAN_NODE, "reject", "GlobalRANNodeID",
         ("globalGNB-ID", {"pLMNIdentity": ploc, "gNB-ID": ("gNB-ID", (gnb_id, gnb_id_bits))})),
        (ID_RAN_NODE_NAME, "ignore", "RANNodeName", name[:150]),
        (ID_SUPPORTED_TAS, "reject", "SupportedTAList", [{"tAC": tac.to_bytes(3, "big"), "broadcastPLMNList": [
            {"pLMNIdentity": ploc, "tAISliceSupportList": [{"s-NSSAI": _snssai(x)} for x in slices]}]}]),
        (ID_PAGING_DRX, "ignore", "PagingDRX", "v128"),
    ])


@_locked
def ng_setup_response(name: str, plmn: str, region: int, amf_set: int, pointer: int,
                      slices: list[Snssai] | tuple[Snssai, ...], capacity: int = 255) -> bytes:
    """NGSetupResponse: the AMF's name, its GUAMI, its capacity and the slices it serves in the PLMN."""
    ploc = _plmn_bytes(plmn)
    return _encode("successfulOutcome", PROC_NG_SETUP, "NGSetupResponse", [
        (ID_AMF_NAME, "reject", "AMFName", name[:150]),
        (ID_SERVED_GUAMIS, "reject", "ServedGUAMIList", [{"gUAMI": {
            "pLMNIdentity": ploc, "aMFRegionID": (region, 8), "aMFSetID": (amf_set, 10), "aMFPointer": (pointer, 6)}}]),
        (ID_AMF_CAPACITY, "ignore", "RelativeAMFCapacity", capacity),
        (ID_PLMN_SUPPORT, "reject", "PLMNSupportList", [
            {"pLMNIdentity": ploc, "sliceSupportList": [{"s-NSSAI": _snssai(x)} for x in slices]}]),
    ])


@_locked
def ng_setup_failure(group: str = "misc", value: str = "unknown-PLMN-or-SNPN") -> bytes:
    """NGSetupFailure with its cause (e.g. a gNB of another PLMN)."""
    return _encode("unsuccessfulOutcome", PROC_NG_SETUP, "NGSetupFailure", [
        (ID_CAUSE, "ignore", "Cause", (group, value)),
    ])


@_locked
def downlink_nas_transport(amf_ue_id: int, ran_ue_id: int, nas_pdu: bytes) -> bytes:
    return _encode("initiatingMessage", PROC_DOWNLINK_NAS_TRANSPORT, "DownlinkNASTransport", [
        (ID_AMF_UE, "reject", "AMF-UE-NGAP-ID", amf_ue_id),
        (ID_RAN_UE, "reject", "RAN-UE-NGAP-ID", ran_ue_id),
        (ID_NAS_PDU, "reject", "NAS-PDU", nas_pdu),
    ])


@_locked
def uplink_nas_transport(amf_ue_id: int, ran_ue_id: int, nas_pdu: bytes, plmn: str, nci: int, tac: int) -> bytes:
    return _encode("initiatingMessage", PROC_UPLINK_NAS_TRANSPORT, "UplinkNASTransport", [
        (ID_AMF_UE, "reject", "AMF-UE-NGAP-ID", amf_ue_id),
        (ID_RAN_UE, "reject", "RAN-UE-NGAP-ID", ran_ue_id),
        (ID_NAS_PDU, "reject", "NAS-PDU", nas_pdu),
        (ID_ULI, "ignore", "UserLocationInformation", _uli(plmn, nci, tac)),
    ])


def _tunnel(tnl) -> Tunnel:
    kind, gtp = tnl
    bits, _length = gtp["transportLayerAddress"]
    return Tunnel(IPv4Address(bits), int.from_bytes(gtp["gTP-TEID"], "big"))


def _decode_snssai(v: dict) -> Snssai:
    return Snssai(v["sST"][0], v["sD"].hex() if "sD" in v else None)


def _contained(value, asn1_type) -> dict:
    """An OCTET STRING (CONTAINING ...) value: pycrate decodes it itself into (type name, value); else decode it here."""
    if isinstance(value, (bytes, bytearray)):
        asn1_type.from_aper(bytes(value))
        return asn1_type.get_val()
    return value[1]


def _request_item(item: dict) -> SessionSetup:
    transfer = _contained(item["pDUSessionResourceSetupRequestTransfer"],
                          NGAP.NGAP_IEs.PDUSessionResourceSetupRequestTransfer)
    ul, qfi, fiveqi = None, None, None
    for ie in transfer["protocolIEs"]:
        name, val = ie["value"]
        if ie["id"] == ID_UL_TNL:
            ul = _tunnel(val)
        elif ie["id"] == ID_QOS_FLOWS:
            qfi = val[0]["qosFlowIdentifier"]
            chars = val[0]["qosFlowLevelQosParameters"]["qosCharacteristics"]
            fiveqi = chars[1]["fiveQI"]
    return SessionSetup(item["pDUSessionID"], _decode_snssai(item["s-NSSAI"]), item.get("pDUSessionNAS-PDU", b""),
                        ul=ul, qfi=qfi, fiveqi=fiveqi)


def _modify_item(item: dict) -> SessionSetup:
    transfer = _contained(item["pDUSessionResourceModifyRequestTransfer"],
                          NGAP.NGAP_IEs.PDUSessionResourceModifyRequestTransfer)
    ul = dl = None
    for ie in transfer["protocolIEs"]:
        if ie["id"] == ID_UL_TNL_MODIFY:
            first = ie["value"][1][0]
            ul, dl = _tunnel(first["uL-NGU-UP-TNLInformation"]), _tunnel(first["dL-NGU-UP-TNLInformation"])
    return SessionSetup(item["pDUSessionID"], ul=ul, dl=dl)


def _modified_item(item: dict) -> SessionSetup:
    transfer = _contained(item["pDUSessionResourceModifyResponseTransfer"],
                          NGAP.NGAP_IEs.PDUSessionResourceModifyResponseTransfer)
    ul = transfer.get("uL-NGU-UP-TNLInformation")
    return SessionSetup(item["pDUSessionID"], ul=_tunnel(ul) if ul else None)


def _response_item(item: dict) -> SessionSetup:
    transfer = _contained(item["pDUSessionResourceSetupResponseTransfer"],
                          NGAP.NGAP_IEs.PDUSessionResourceSetupResponseTransfer)
    info = transfer["dLQosFlowPerTNLInformation"]
    return SessionSetup(item["pDUSessionID"], dl=_tunnel(info["uPTransportLayerInformation"]),
                        qfi=info["associatedQosFlowList"][0]["qosFlowIdentifier"])


@_locked
def decode(buf: bytes) -> Ngap:
    """An NGAP PDU of the procedures above into an `Ngap` (ValueError for any other, or for broken APER)."""
    pdu = NGAP.NGAP_PDU_Descriptions.NGAP_PDU
    try:
        pdu.from_aper(buf)
    except Exception as exc:  # pycrate raises its own error classes for broken APER
        raise ValueError(f"not an NGAP PDU: {exc}") from exc
    _kind, msg = pdu.get_val()
    name, body = msg["value"]
    ies = {ie["id"]: ie["value"][1] for ie in body["protocolIEs"]}
    if name == "InitialUEMessage":
        nr = ies[ID_ULI][1]
        return Ngap(name, ies[ID_RAN_UE], nas=ies[ID_NAS_PDU], plmn=_plmn_str(nr["nR-CGI"]["pLMNIdentity"]),
                    nci=nr["nR-CGI"]["nRCellIdentity"][0], tac=int.from_bytes(nr["tAI"]["tAC"], "big"))
    if name == "PDUSessionResourceSetupRequest":
        return Ngap(name, ies[ID_RAN_UE], ies[ID_AMF_UE],
                    sessions=tuple(_request_item(i) for i in ies[ID_SETUP_LIST_REQ]))
    if name == "PDUSessionResourceSetupResponse":
        return Ngap(name, ies[ID_RAN_UE], ies[ID_AMF_UE],
                    sessions=tuple(_response_item(i) for i in ies.get(ID_SETUP_LIST_RES, [])))
    if name == "PDUSessionResourceModifyRequest":
        return Ngap(name, ies[ID_RAN_UE], ies[ID_AMF_UE],
                    sessions=tuple(_modify_item(i) for i in ies[ID_MODIFY_LIST_REQ]))
    if name == "PDUSessionResourceModifyResponse":
        return Ngap(name, ies[ID_RAN_UE], ies[ID_AMF_UE],
                    sessions=tuple(_modified_item(i) for i in ies.get(ID_MODIFY_LIST_RES, [])))
    if name in ("DownlinkNASTransport", "UplinkNASTransport"):
        out = Ngap(name, ies[ID_RAN_UE], ies[ID_AMF_UE], nas=ies[ID_NAS_PDU])
        if ID_ULI in ies:
            nr = ies[ID_ULI][1]
            out = Ngap(name, out.ran_ue_id, out.amf_ue_id, nas=out.nas, plmn=_plmn_str(nr["nR-CGI"]["pLMNIdentity"]),
                       nci=nr["nR-CGI"]["nRCellIdentity"][0], tac=int.from_bytes(nr["tAI"]["tAC"], "big"))
        return out
    if name == "NGSetupRequest":
        _kind, gid = ies[ID_GLOBAL_RAN_NODE]
        tas = ies.get(ID_SUPPORTED_TAS, [])
        first = tas[0] if tas else None
        slices = tuple(_decode_snssai(x["s-NSSAI"]) for ta in tas for b in ta["broadcastPLMNList"]
                       for x in b["tAISliceSupportList"])
        return Ngap(name, plmn=_plmn_str(gid["pLMNIdentity"]), gnb_id=gid["gNB-ID"][1][0],
                    name=ies.get(ID_RAN_NODE_NAME), tac=int.from_bytes(first["tAC"], "big") if first else None,
                    slices=tuple(dict.fromkeys(slices)))
    if name == "NGSetupResponse":
        support = ies.get(ID_PLMN_SUPPORT, [])
        guami = ies[ID_SERVED_GUAMIS][0]["gUAMI"]
        return Ngap(name, plmn=_plmn_str(guami["pLMNIdentity"]), name=ies.get(ID_AMF_NAME),
                    slices=tuple(_decode_snssai(x["s-NSSAI"]) for p in support for x in p["sliceSupportList"]))
    if name == "NGSetupFailure":
        group, value = ies[ID_CAUSE]
        return Ngap(name, cause=f"{group}/{value}")
    raise ValueError(f"NGAP {name} is not one the emulation uses")
