"""The emulated 5G core: one process in the AMF and SMF roles.

    python -m testbed.ran.amf --config core.json [--status core-status.json]

- N2: an NGAP server on <address>:38412, over SCTP where the kernel has it and
  over the documented TCP fallback always (testbed.ran.n2), so gNBs of either
  kind connect. NGSetupRequest from a gNB of the plan's PLMN is answered with
  NGSetupResponse (the AMF's GUAMI and the PLMN's slices), else NGSetupFailure.
- Registration (InitialUEMessage carrying a Registration Request): admission by
  testbed.ran.core against the plan's subscribers; Registration Accept or Reject
  (#7 unknown SUPI, #62 no subscribed slice requested) in a
  DownlinkNASTransport. A re-registering SUPI loses its old sessions first.
- PDU sessions (UplinkNASTransport carrying a PDU Session Establishment
  Request): admission by testbed.ran.core (#33 slice not subscribed, #70 DNN
  not in the slice), then, as the SMF, the session's UPF from the plan is told
  over the emulated N4 (testbed.ran.n4: JSON lines on TCP 8805, *not* PFCP)
  to expect the UL TEID and the session address; then
  PDUSessionResourceSetupRequest to the gNB carries the UL tunnel, the QoS
  flow and the NAS accept for the UE. The gNB's PDUSessionResourceSetupResponse
  gives the DL tunnel, which goes to the UPF in an N4 modify. A UPF that does
  not answer turns the session into a reject #26 (insufficient resources).
- Every accept and reject is one log line (with the cause and its reason) and
  is kept in the status file (the last MAX_REJECTS rejects).
- MEC fallback: when a UPF stops answering the SMF's PFCP heartbeats
  (testbed.ran.smf), each session anchored there that the plan gives a
  `fallback_upf` (the central UPF) is moved: the fallback UPF is told over N4
  to take the session (same UL TEID, address and DL tunnel), then the gNB gets
  a PDUSessionResourceModifyRequest with the new UL tunnel (UL NG-U UP TNL
  Modify List) and answers with a PDUSessionResourceModifyResponse. The UE
  keeps its address and notices nothing but the gap. When the MEC UPF answers
  again the sessions move back the same way, and the central UPF lets go of
  them only after (make before break). Each move is a log line and an entry of
  the session's `moves` in the status file, which is written at once.

This module holds the procedures and the UE contexts; the N2 transport (listeners,
gNB connections, NGAP dispatch) is n2server.py and the N4 side smf.py.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter, deque
from ipaddress import IPv4Address
from typing import Any

from testbed.ran import core, daemon, n2, n4, nas, ngap, pfcp
from testbed.ran.daemon import Log, Loop, StatusFile, need
from testbed.ran.n2server import GnbPeer, N2Server
from testbed.ran.plan import RanPlan, Session
from testbed.ran.ngap import Tunnel
from testbed.ran.planfile import plan_from_dict
from testbed.ran.smf import Smf

MAX_REJECTS = 1000
# T3396 sent with a reject for a UPF that cannot take the session now (lost, or N4 failed): the UE asks again
# after it, by when the UPF is back or its sessions' fallback is chosen
BACKOFF_S = 2
RECONCILE_S = 2.0  # how often sessions stranded away from where they belong are moved again


def cause_name(kind: str, cause: int | None) -> str | None:
    enum = nas.MmCause if kind == "registration" else nas.SmCause
    try:
        return enum(cause).name.lower().replace("_", "-")
    except ValueError:
        return None


def reject_entry(plan: RanPlan, kind: str, supi: str | None, cause: int | None, reason: str, peer: GnbPeer,
                 extra: dict[str, Any]) -> dict[str, Any]:
    """One reject as the status file keeps it (and the log line shows it, without the time)."""
    sub = plan.by_supi(supi) if supi else None
    return {"time": round(time.time(), 3), "kind": kind, "ue": sub.name if sub else None, "supi": supi,
            "cause": int(cause) if cause is not None else None, "cause_name": cause_name(kind, cause),
            "reason": reason, "gnb": peer.name, **{k: v for k, v in extra.items() if v is not None}}


class AmfSession:
    """A PDU session as the core tracks it: the plan's session, its UPF, the gNB's downlink tunnel."""

    def __init__(self, session: Session, upf_name: str, upf_address: str, requested: float) -> None:
        self.session = session
        self.upf = upf_name
        self.upf_address = upf_address
        self.state = "setting-up"
        self.dl_teid: int | None = None
        self.gnb: str | None = None
        self.requested = requested
        self.setup_ms: float | None = None
        self.moves: list[dict[str, Any]] = []  # MEC fallback and back: when, from, to, why, gNB confirmed

    def view(self) -> dict[str, Any]:
        s = self.session
        return {"psi": s.psi, "tun": s.tun, "slice": s.slice, "dnn": s.dnn, "address": str(s.address),
                "upf": self.upf, "planned_upf": s.upf, "fallback_upf": s.fallback_upf, "moves": self.moves,
                "ul_teid": s.ul_teid, "dl_teid": self.dl_teid, "gnb": self.gnb, "qfi": s.qfi, "fiveqi": s.fiveqi,
                "dscp": s.dscp, "state": self.state, "setup_ms": self.setup_ms}


class AmfUe:
    """A registered UE: its NGAP ids, the gNB it came through, its sessions by PSI."""

    def __init__(self, amf_ue_id: int, ran_ue_id: int, peer: GnbPeer, supi: str, name: str) -> None:
        self.amf_ue_id = amf_ue_id
        self.ran_ue_id = ran_ue_id
        self.peer = peer
        self.supi = supi
        self.name = name
        self.sessions: dict[int, AmfSession] = {}
        self.registered = time.time()


class Amf:
    """The AMF and SMF procedures of one core, over its N2 server and its N4 clients."""

    def __init__(self, cfg: dict[str, Any], log: Log, status: StatusFile, loop: Loop) -> None:
        self.log = log
        self.status_file = status
        self.loop = loop
        self.name = str(cfg.get("name", "amf"))
        self.amf_name = str(cfg.get("amf_name", self.name))
        self.address = str(IPv4Address(need(cfg, "address", str)))
        port, transport_pref = int(cfg.get("ngap_port", n2.PORT)), str(cfg.get("n2_transport", "auto"))
        self.plan: RanPlan = plan_from_dict(need(cfg, "plan", dict))
        self.max_ues = int(cfg.get("max_ues", 100_000))
        self.smf = Smf(self.plan, self.name, self.address, int(cfg.get("n4_port", n4.PORT)), log, status, loop,
                       int(cfg.get("pfcp_port", pfcp.PORT)))
        self.smf.on_upf_change = self.upf_changed
        self.ues: dict[int, AmfUe] = {}
        self.by_supi: dict[str, AmfUe] = {}
        self.next_amf_id = 1
        self.rejects: deque[dict[str, Any]] = deque(maxlen=MAX_REJECTS)
        self.counters: Counter[str] = Counter()
        self.n2 = N2Server(self.address, port, transport_pref, self, self._gnb_lost, log, status, loop, self.counters)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        transports = self.n2.start()
        self.loop.every(1.0, lambda: self.status_file.maybe_write(self.status))
        self.loop.every(RECONCILE_S, lambda: self.reconcile("periodic check: not at its UPF"))
        self.smf.start()
        self.log("start", address=self.address, ngap=f"{'+'.join(transports)}/{self.n2.port}",
                 sctp="available" if n2.SCTP in transports else "unavailable (TCP fallback)",
                 plmn=self.plan.plmn, subscribers=len(self.plan.subscribers),
                 upfs=",".join(f"{u.name}@{u.address}" for u in self.plan.upfs))
        self.status_file.maybe_write(self.status, force=True)

    def close(self) -> None:
        self.n2.close()
        self.smf.close()

    def _gnb_lost(self, peer: GnbPeer) -> int:
        """A gNB's connection is gone: its UEs are released; how many."""
        gone = [ue for ue in self.ues.values() if ue.peer is peer]
        for ue in gone:
            self.release(ue, "gNB lost")
        return len(gone)

    # ------------------------------------------------------------------ NGAP procedures

    def n2_NGSetupRequest(self, peer: GnbPeer, msg: ngap.Ngap) -> None:
        planned = next((g for g in self.plan.gnbs if g.gnb_id == msg.gnb_id), None)
        peer.name = planned.name if planned else (msg.name or peer.conn.peer[0])
        peer.gnb_id, peer.tac = msg.gnb_id, msg.tac
        if msg.plmn != self.plan.plmn:
            self.log("ng-setup", gnb=peer.name, result="failed", reason=f"PLMN {msg.plmn} is not {self.plan.plmn}")
            self.n2.send(peer, ngap.ng_setup_failure("misc", "unknown-PLMN-or-SNPN"))
            return
        peer.ready = True
        core_ = self.plan.core
        self.n2.send(peer, ngap.ng_setup_response(self.amf_name, self.plan.plmn, core_.amf_region, core_.amf_set,
                                                  core_.amf_pointer, [s.snssai for s in self.plan.slices]))
        self.log("ng-setup", gnb=peer.name, gnb_id=msg.gnb_id, tac=msg.tac, result="accepted",
                 planned="yes" if planned else "no", transport=peer.conn.transport)

    def n2_InitialUEMessage(self, peer: GnbPeer, msg: ngap.Ngap) -> None:
        try:
            verdict = core.register(self.plan, msg.nas)
        except Exception as exc:  # whatever a UE sends, the core stays up (pycrate raises more than NasError)
            self.counters["nas_undecodable"] += 1
            self.log("nas-error", gnb=peer.name, ran_ue_id=msg.ran_ue_id, error=str(exc)[:200])
            return
        amf_id = self._new_amf_id()
        if not verdict.accepted:
            self.counters["registration_rejects"] += 1
            self.reject("registration", verdict.supi, verdict.cause, verdict.reason, peer)
            self.n2.send(peer, ngap.downlink_nas_transport(amf_id, msg.ran_ue_id, verdict.response))
            return
        sub = self.plan.by_supi(verdict.supi)
        old = self.by_supi.get(verdict.supi)
        if old is not None:
            self.release(old, "registered again")
        if len(self.ues) >= self.max_ues:
            self.log("registration", ue=sub.name, supi=verdict.supi, result="dropped", reason="AMF full")
            return
        ue = AmfUe(amf_id, msg.ran_ue_id, peer, verdict.supi, sub.name)
        self.ues[amf_id] = ue
        self.by_supi[ue.supi] = ue
        self.counters["registrations"] += 1
        self.n2.send(peer, ngap.downlink_nas_transport(amf_id, msg.ran_ue_id, verdict.response))
        self.log("registration", ue=sub.name, supi=ue.supi, result="accepted", gnb=peer.name, amf_ue_id=amf_id,
                 reason=verdict.reason)

    def n2_UplinkNASTransport(self, peer: GnbPeer, msg: ngap.Ngap) -> None:
        ue = self.ues.get(msg.amf_ue_id)
        if ue is None or ue.peer is not peer:
            self.log("nas-unknown-ue", gnb=peer.name, amf_ue_id=msg.amf_ue_id)
            return
        ue.ran_ue_id = msg.ran_ue_id
        try:
            request = nas.decode(msg.nas)
        except Exception as exc:  # as above: a broken message is logged, never fatal
            self.log("nas-error", ue=ue.name, error=str(exc)[:200])
            return
        if not isinstance(request, nas.SessionRequest):
            self.log("nas-ignored", ue=ue.name, message=type(request).__name__)
            return
        t0 = time.monotonic()
        verdict = core.establish(self.plan, ue.supi, request)
        if not verdict.accepted:
            self.counters["session_rejects"] += 1
            self.reject("session", ue.supi, verdict.cause, verdict.reason, peer, psi=request.psi,
                        snssai=str(request.snssai) if request.snssai else None, dnn=request.dnn)
            self.n2.send(peer, ngap.downlink_nas_transport(ue.amf_ue_id, ue.ran_ue_id, verdict.response))
            return
        planned = dataclasses.replace(verdict.session, psi=request.psi)
        for psi, other in list(ue.sessions.items()):
            if psi == request.psi or other.session.ul_teid == planned.ul_teid:
                self.release_session(ue, other, "requested again")
        # its planned UPF, else (lost, or its N4 just failed) its fallback: a MEC session is set up centrally
        # rather than refused while its MEC UPF is gone, and comes home by `reconcile` once that one answers
        tried: list[str] = []
        answer: dict[str, Any] = {}
        for anchor in sorted(filter(None, (planned.upf, planned.fallback_upf)), key=self.smf.available,
                             reverse=True):
            answer = self.smf.request(anchor, {
                "op": "establish", "seid": planned.ul_teid, "ue": ue.name, "supi": ue.supi, "slice": planned.slice,
                "address": str(planned.address), "ul_teid": planned.ul_teid, "qfi": planned.qfi,
                "dscp": planned.dscp})
            tried.append(f"UPF {anchor}: {answer.get('error')}")
            if answer.get("ok"):
                break
        if not answer.get("ok"):
            cause = nas.SmCause.INSUFFICIENT_RESOURCES
            reason = f"{ue.name}: no UPF took the session: {'; '.join(tried)}"
            self.counters["session_rejects"] += 1
            self.reject("session", ue.supi, cause, reason, peer, psi=request.psi, snssai=str(planned.snssai),
                        dnn=planned.dnn)
            reject = nas.dl_nas_transport(nas.session_reject(request.psi, request.pti, cause, BACKOFF_S), request.psi)
            self.n2.send(peer, ngap.downlink_nas_transport(ue.amf_ue_id, ue.ran_ue_id, reject))
            return
        upf = self.plan.upf(anchor)
        sess = AmfSession(planned, anchor, str(upf.address), t0)
        if anchor != planned.upf:  # a move at set-up, for whoever follows the core's moves
            sess.moves.append({"at": round(time.time(), 3), "from": planned.upf, "to": anchor,
                               "reason": f"set up at the fallback: {tried[0]}"})
        ue.sessions[request.psi] = sess
        self.n2.send(peer, ngap.setup_request(ue.amf_ue_id, ue.ran_ue_id, [(planned, verdict.response, upf.address)]))
        self.log("session-request", ue=ue.name, psi=request.psi, slice=planned.slice, dnn=planned.dnn,
                 address=str(planned.address), upf=anchor, ul_teid=f"{planned.ul_teid:#010x}")

    def n2_PDUSessionResourceSetupResponse(self, peer: GnbPeer, msg: ngap.Ngap) -> None:
        ue = self._ue_of(msg)
        if ue is None:
            return
        for item in msg.sessions:
            sess = ue.sessions.get(item.psi)
            if sess is None or item.dl is None:
                continue
            answer = self.smf.request(sess.upf, {"op": "modify", "seid": sess.session.ul_teid,
                                                 "gnb": str(item.dl.address), "dl_teid": item.dl.teid})
            sess.dl_teid, sess.gnb = item.dl.teid, str(item.dl.address)
            sess.state = "active" if answer.get("ok") else "no-downlink"
            sess.setup_ms = round((time.monotonic() - sess.requested) * 1000, 2)
            self.counters["sessions"] += 1
            s = sess.session
            self.log("session", ue=ue.name, psi=s.psi, slice=s.slice, result="accepted", address=str(s.address),
                     upf=sess.upf, ul_teid=f"{s.ul_teid:#010x}", dl_teid=f"{item.dl.teid:#010x}",
                     gnb=sess.gnb, qfi=s.qfi, dscp=s.dscp, setup_ms=sess.setup_ms,
                     error=None if answer.get("ok") else answer.get("error"))

    def n2_PDUSessionResourceModifyResponse(self, peer: GnbPeer, msg: ngap.Ngap) -> None:
        ue = self._ue_of(msg)
        if ue is None:
            return
        for item in msg.sessions:
            sess = ue.sessions.get(item.psi)
            if sess is not None and sess.moves and item.ul is not None and str(item.ul.address) == sess.upf_address:
                sess.moves[-1]["gnb_confirmed_at"] = round(time.time(), 3)
                self.log("session-moved", ue=ue.name, psi=item.psi, upf=sess.upf, gnb=peer.name)
        self.status_file.maybe_write(self.status, force=True)

    def _ue_of(self, msg: ngap.Ngap) -> AmfUe | None:
        """The UE an answer from a gNB is about (None, logged, when the core does not know it)."""
        ue = self.ues.get(msg.amf_ue_id)
        if ue is None:
            self.log("ngap-unknown-ue", procedure=msg.procedure, amf_ue_id=msg.amf_ue_id)
        return ue

    # ------------------------------------------------------------------ MEC fallback

    def upf_changed(self, name: str, alive: bool) -> None:
        """A UPF was lost or is back: every session goes where it belongs now (`anchor_for`)."""
        moved = self.reconcile(f"UPF {name} " + ("answers again" if alive else "lost"))
        self.log("upf-" + ("back" if alive else "lost"), upf=name, sessions_moved=moved)
        self.status_file.maybe_write(self.status, force=True)

    def anchor_for(self, sess: AmfSession) -> str:
        """Where a session belongs: its planned UPF if available (not lost, N4 not failing), else its fallback
        if available, else where it is (nowhere better to go)."""
        s = sess.session
        if self.smf.available(s.upf):
            return s.upf
        if s.fallback_upf and self.smf.available(s.fallback_upf):
            return s.fallback_upf
        return sess.upf

    def reconcile(self, why: str) -> int:
        """Move every set-up session not at `anchor_for` there; the number moved.

        Run at each UPF change and every RECONCILE_S, so a session stranded by an earlier failure (its
        fallback lost at the same time, or a move refused) goes where it belongs once it can."""
        moves = [(ue, sess, to) for ue in list(self.ues.values()) for sess in list(ue.sessions.values())
                 if sess.dl_teid is not None and (to := self.anchor_for(sess)) != sess.upf]
        return sum(self.move_session(ue, sess, to, why) for ue, sess, to in moves)

    def move_session(self, ue: AmfUe, sess: AmfSession, to: str, why: str) -> bool:
        """Anchor a session at UPF `to`: N4 there first, then the gNB's UL tunnel, then the old UPF lets go."""
        s, old = sess.session, sess.upf
        if sess.dl_teid is None or sess.gnb is None:
            return False  # not set up yet: its own set-up (which sees the lost UPF) decides
        answer = self.smf.request(to, {
            "op": "establish", "seid": s.ul_teid, "ue": ue.name, "supi": ue.supi, "slice": s.slice,
            "address": str(s.address), "ul_teid": s.ul_teid, "qfi": s.qfi, "dscp": s.dscp,
            "gnb": sess.gnb, "dl_teid": sess.dl_teid})
        if not answer.get("ok"):
            self.counters["session_move_failures"] += 1
            self.log("session-move-failed", ue=ue.name, psi=s.psi, upf=to, reason=why, error=answer.get("error"))
            return False
        address = self.plan.upf(to).address
        sess.upf, sess.upf_address = to, str(address)
        sess.moves.append({"at": round(time.time(), 3), "from": old, "to": to, "reason": why})
        self.n2.send(ue.peer, ngap.modify_request(ue.amf_ue_id, ue.ran_ue_id, [
            (s.psi, Tunnel(address, s.ul_teid), Tunnel(IPv4Address(sess.gnb), sess.dl_teid))]))
        if not self.smf.lost(old):
            self.smf.request(old, {"op": "delete", "seid": s.ul_teid})
        self.counters["sessions_moved"] += 1
        self.log("session-move", ue=ue.name, psi=s.psi, address=str(s.address), upf=to, previous_upf=old,
                 reason=why)
        return True

    # ------------------------------------------------------------------ helpers

    def _new_amf_id(self) -> int:
        while self.next_amf_id in self.ues or self.next_amf_id == 0:
            self.next_amf_id = (self.next_amf_id + 1) % (1 << 40)  # AMF UE NGAP id: 0..2^40-1
        amf_id = self.next_amf_id
        self.next_amf_id = (self.next_amf_id + 1) % (1 << 40)
        return amf_id

    def release_session(self, ue: AmfUe, sess: AmfSession, why: str) -> None:
        ue.sessions.pop(sess.session.psi, None)
        self.smf.request(sess.upf, {"op": "delete", "seid": sess.session.ul_teid})
        self.log("session-release", ue=ue.name, psi=sess.session.psi, reason=why)

    def release(self, ue: AmfUe, why: str) -> None:
        for sess in list(ue.sessions.values()):
            self.release_session(ue, sess, why)
        self.ues.pop(ue.amf_ue_id, None)
        if self.by_supi.get(ue.supi) is ue:
            del self.by_supi[ue.supi]

    def reject(self, kind: str, supi: str | None, cause: int | None, reason: str, peer: GnbPeer,
               **extra: Any) -> None:
        entry = reject_entry(self.plan, kind, supi, cause, reason, peer, extra)
        self.rejects.append(entry)
        self.status_file.dirty = True
        self.log("reject", **{k: v for k, v in entry.items() if k != "time"})

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        return {
            "program": "amf", "name": self.name, "address": self.address, "pid": os.getpid(),
            "roles": ["amf", "smf"],
            "n2": self.n2.view(),
            "n4": self.smf.view(),
            "gnbs": self.n2.gnbs(),
            "counters": {"ues": len(self.ues), "registrations": 0, "registration_rejects": 0, "sessions": 0,
                         "session_rejects": 0, **self.counters},
            "ues": [{"name": u.name, "supi": u.supi, "amf_ue_id": u.amf_ue_id, "ran_ue_id": u.ran_ue_id,
                     "gnb": u.peer.name, "sessions": [s.view() for s in u.sessions.values()]}
                    for u in self.ues.values()],
            "rejects": list(self.rejects),
        }


def main(argv: list[str] | None = None) -> int:
    return daemon.main("amf", __doc__, Amf, argv)


if __name__ == "__main__":
    raise SystemExit(main())
