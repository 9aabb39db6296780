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
  address + DL TEID) and the QoS flow it accepted.

`decode(buf)` returns a `Ngap` with the fields the emulation and the tests read.
pycrate's ASN.1 types are module-level objects that hold the value being coded,
so every public function here runs under one lock (safe from several threads).
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from pycrate_asn1dir import NGAP

from testbed.ran.plan import Session, Snssai

PROC_INITIAL_UE_MESSAGE = 15
PROC_PDU_SESSION_RESOURCE_SETUP = 29
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
    procedure: str  # "InitialUEMessage", "PDUSessionResourceSetupRequest", "PDUSessionResourceSetupResponse"
    ran_ue_id: int
    amf_ue_id: int | None = None
    nas: bytes = b""
    plmn: str | None = None
    nci: int | None = None
    tac: int | None = None
    sessions: tuple[SessionSetup, ...] = field(default_factory=tuple)


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


def _encode(kind: str, proc: int, name: str, ies: list[tuple[int, str, str, object]]) -> bytes:
    pdu = NGAP.NGAP_PDU_Descriptions.NGAP_PDU
    pdu.set_val((kind, {"procedureCode": proc, "criticality": "reject" if proc != PROC_INITIAL_UE_MESSAGE else "ignore",
                        "value": (name, {"protocolIEs": [
                            {"id": i, "criticality": crit, "value": (typ, val)} for i, crit, typ, val in ies]})}))
    return pdu.to_aper()


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
        {"id": ID_UL_TNL, "criticality": "reject", "value": ("UPTransportLayerInformation", ("gTPTunnel", {
            "transportLayerAddress": _ip_bits(upf_address), "gTP-TEID": session.ul_teid.to_bytes(4, "big")}))},
        {"id": ID_SESSION_TYPE, "criticality": "reject", "value": ("PDUSessionType", "ipv4")},
        {"id": ID_QOS_FLOWS, "criticality": "reject", "value": ("QosFlowSetupRequestList", [flow])},
    ]})
    return transfer.to_aper()


@_locked
def setup_request(amf_ue_id: int, ran_ue_id: int, items: list[tuple[Session, bytes, IPv4Address]]) -> bytes:
    """One PDUSessionResourceSetupRequest for (session, its NAS accept, its UPF's N3 address) items."""
    setup = [{"pDUSessionID": s.psi, "pDUSessionNAS-PDU": nas_pdu, "s-NSSAI": _snssai(s.snssai),
              "pDUSessionResourceSetupRequestTransfer": setup_request_transfer(s, upf)} for s, nas_pdu, upf in items]
    return _encode("initiatingMessage", PROC_PDU_SESSION_RESOURCE_SETUP, "PDUSessionResourceSetupRequest", [
        (ID_AMF_UE, "reject", "AMF-UE-NGAP-ID", amf_ue_id),
        (ID_RAN_UE, "reject", "RAN-UE-NGAP-ID", ran_ue_id),
        (ID_SETUP_LIST_REQ, "reject", "PDUSessionResourceSetupListSUReq", setup),
    ])


@_locked
def setup_response(amf_ue_id: int, ran_ue_id: int, items: list[tuple[Session, IPv4Address]]) -> bytes:
    """The gNB's answer: per (session, gNB N3 address) the DL tunnel and the accepted QoS flow."""
    transfer = NGAP.NGAP_IEs.PDUSessionResourceSetupResponseTransfer
    done = []
    for s, gnb in items:
        transfer.set_val({"dLQosFlowPerTNLInformation": {
            "uPTransportLayerInformation": ("gTPTunnel", {"transportLayerAddress": _ip_bits(gnb),
                                                          "gTP-TEID": s.dl_teid.to_bytes(4, "big")}),
            "associatedQosFlowList": [{"qosFlowIdentifier": s.qfi}]}})
        done.append({"pDUSessionID": s.psi, "pDUSessionResourceSetupResponseTransfer": transfer.to_aper()})
    return _encode("successfulOutcome", PROC_PDU_SESSION_RESOURCE_SETUP, "PDUSessionResourceSetupResponse", [
        (ID_AMF_UE, "ignore", "AMF-UE-NGAP-ID", amf_ue_id),
        (ID_RAN_UE, "ignore", "RAN-UE-NGAP-ID", ran_ue_id),
        (ID_SETUP_LIST_RES, "ignore", "PDUSessionResourceSetupListSURes", done),
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


def _response_item(item: dict) -> SessionSetup:
    transfer = _contained(item["pDUSessionResourceSetupResponseTransfer"],
                          NGAP.NGAP_IEs.PDUSessionResourceSetupResponseTransfer)
    info = transfer["dLQosFlowPerTNLInformation"]
    return SessionSetup(item["pDUSessionID"], dl=_tunnel(info["uPTransportLayerInformation"]),
                        qfi=info["associatedQosFlowList"][0]["qosFlowIdentifier"])


@_locked
def decode(buf: bytes) -> Ngap:
    """An NGAP PDU of the three procedures above into an `Ngap` (ValueError for any other)."""
    pdu = NGAP.NGAP_PDU_Descriptions.NGAP_PDU
    pdu.from_aper(buf)
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
    raise ValueError(f"NGAP {name} is not one the emulation uses")
