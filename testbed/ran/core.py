"""What the emulated 5G core answers: registration and PDU session admission, as pure functions.

The core node's daemon (a later step) receives NAS bytes and sends these
answers; keeping the decision here, over the RanPlan, lets the unit tests and
the prober know exactly which request is refused and with which cause:

- registration: an unknown SUPI gets Registration Reject #7 "5GS services not
  allowed" (what Open5GS's AMF sends when the UDM answers 404); a UE asking only
  for slices it is not subscribed to gets #62 "no network slices available"
  with them as rejected NSSAI; otherwise Registration Accept with the allowed
  NSSAI (requested and subscribed; all subscribed when it requested none) and
  the rest as rejected NSSAI;
- PDU session: an S-NSSAI outside the subscription gets PDU Session
  Establishment Reject #33 "requested service option not subscribed" (the SMF's
  cause when the subscription has no such service, TS 24.501 6.4.1.4.2); a
  subscribed S-NSSAI with a DNN it does not have gets #70 "missing or unknown
  DNN in a slice"; otherwise Accept with the session's planned address, QFI,
  5QI and AMBR. Either answer travels in a DL NAS Transport.

Every verdict carries a one-line reason for the log and the report.
"""
from __future__ import annotations

from dataclasses import dataclass

from testbed.ran import nas
from testbed.ran.plan import RanPlan, Session, Snssai, Subscriber


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    supi: str | None
    cause: int | None  # the 5GMM cause (registration) or 5GSM cause (session) of a reject
    reason: str
    response: bytes  # the NAS message to send back
    session: Session | None = None  # the planned session an accept sets up


def tmsi_of(plan: RanPlan, sub: Subscriber) -> int:
    """A stable 5G-TMSI per subscriber (its position in the plan, from 1)."""
    return plan.subscribers.index(sub) + 1


def register(plan: RanPlan, request: bytes) -> Verdict:
    """Answer a Registration Request (raises nas.NasError for anything else)."""
    req = nas.decode(request)
    if not isinstance(req, nas.RegistrationRequest):
        raise nas.NasError(f"expected a Registration Request, got {type(req).__name__}")
    sub = plan.by_supi(req.supi)
    if sub is None:
        cause = nas.MmCause.SERVICES_NOT_ALLOWED
        return Verdict(False, req.supi, cause, f"unknown SUPI {req.supi}", nas.registration_reject(cause))
    subscribed = sub.nssai
    requested = req.nssai or subscribed
    allowed = tuple(s for s in requested if s in subscribed)
    rejected = tuple(s for s in requested if s not in subscribed)
    if not allowed:
        cause = nas.MmCause.NO_NETWORK_SLICES_AVAILABLE
        return Verdict(False, req.supi, cause, f"{sub.name}: none of {_names(requested)} is subscribed",
                       nas.registration_reject(cause, rejected))
    core = plan.core
    tacs = sorted({g.tac for g in plan.gnbs})
    response = nas.registration_accept(plan.plmn, tacs, allowed, tmsi_of(plan, sub), rejected,
                                       core.amf_region, core.amf_set, core.amf_pointer)
    reason = f"{sub.name} registered, allowed {_names(allowed)}" + (f", rejected {_names(rejected)}" if rejected else "")
    return Verdict(True, req.supi, None, reason, response)


def establish(plan: RanPlan, supi: str, request: bytes | nas.SessionRequest) -> Verdict:
    """Answer a UL NAS Transport carrying a PDU Session Establishment Request from a registered `supi`
    (its bytes, or what nas.decode made of them when the caller decoded it already)."""
    req = request if isinstance(request, nas.SessionRequest) else nas.decode(request)
    if not isinstance(req, nas.SessionRequest):
        raise nas.NasError(f"expected a PDU Session Establishment Request, got {type(req).__name__}")
    sub = plan.by_supi(supi)
    sessions = sub.sessions if sub is not None else ()
    if req.snssai is not None:
        candidates = [s for s in sessions if s.snssai == req.snssai]
    else:  # no S-NSSAI: the subscription's default, i.e. its first slice
        candidates = [s for s in sessions if s.snssai == sessions[0].snssai] if sessions else []
    if not candidates:
        return _reject(req, supi, nas.SmCause.SERVICE_OPTION_NOT_SUBSCRIBED,
                       f"{sub.name if sub else supi}: slice {req.snssai} is not subscribed")
    chosen = [s for s in candidates if req.dnn is None or s.dnn == req.dnn]
    if not chosen:
        return _reject(req, supi, nas.SmCause.MISSING_OR_UNKNOWN_DNN_IN_SLICE,
                       f"{sub.name}: DNN {req.dnn!r} is not subscribed in slice {candidates[0].slice}")
    s = chosen[0]
    info = plan.slice(s.slice)
    accept = nas.session_accept(req.psi, req.pti, s.address, s.qfi, s.fiveqi, s.snssai, s.dnn,
                                (info.ambr_mbps, info.ambr_mbps))
    return Verdict(True, supi, None, f"{s.ue}: session {s.slice}/{s.dnn} {s.address} via {s.upf}",
                   nas.dl_nas_transport(accept, req.psi), s)


def _reject(req: nas.SessionRequest, supi: str, cause: int, reason: str) -> Verdict:
    return Verdict(False, supi, cause, reason, nas.dl_nas_transport(nas.session_reject(req.psi, req.pti, cause), req.psi))


def _names(slices: tuple[Snssai, ...]) -> str:
    return ", ".join(str(s) for s in slices) or "none"
