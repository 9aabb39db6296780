"""The emulated gNB: radio link simulation (RLS) towards its UEs, NGAP towards the AMF, GTP-U towards UPFs.

    python -m testbed.ran.gnb --config gnb.json [--status gnb-status.json]

- N2: connects to the AMF (NGAP over SCTP where the kernel has it, else the
  documented TCP fallback, testbed.ran.n2; `transport` in the log and status),
  sends NGSetupRequest (its global gNB id, tracking area, the PLMN's slices)
  and retries with back-off until the AMF answers NGSetupResponse. If N2 drops,
  every UE context is released (the UEs are told over RLS and register again).
- Radio: RLS (testbed.ran.rls) on UDP 4997 at its address. The cell is on the
  air once NG setup succeeded: from then on a UE's HEARTBEAT makes it known
  (answered with HEARTBEAT_ACK); its NAS goes to the AMF in an
  InitialUEMessage (a Registration Request: a fresh RAN UE NGAP id and a fresh
  context) or an UplinkNASTransport, and DownlinkNASTransport NAS comes back to
  it over RLS.
- PDUSessionResourceSetupRequest: per session it learns the UL tunnel (UPF
  address + UL TEID) and the QFI/5QI, takes a DL TEID (the plan's one for this
  UE and session when the config names it, else the next free one), answers
  PDUSessionResourceSetupResponse with its DL tunnel, then passes the NAS
  accept to the UE.
- User plane: RLS DATA from a UE's session -> one G-PDU to its UPF (UL TEID,
  PDU Session Container with the QFI, outer DSCP of the session's 5QI set on
  each send, from port 2152); G-PDUs on UDP 2152 -> the session of their
  DL TEID -> RLS DATA to the UE. Dropped and counted by reason: `unknown-session`
  (RLS data for no session), `wrong-ue-address` (RLS data for a session from
  another address than its UE's), `unknown-teid`, `unknown-upf` (G-PDU for a
  session from another address than its UPF), `malformed`, `not-gpdu`.

This module holds the config, the UE procedures (attach, NAS relay, session
setup) and the status; the N2 connection is gnbn2.py, the UE and session
contexts gnbctx.py, the RLS and GTP-U packet loops gnbuser.py.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from ipaddress import IPv4Address
from typing import Any

from testbed.ran import daemon, gtpu, n2, ngap, rls
from testbed.ran.daemon import Log, Loop, StatusFile, need
from testbed.ran.gnbctx import GnbSession, GnbUe, UeContexts
from testbed.ran.gnbn2 import AmfLink
from testbed.ran.gnbuser import Drops, GnbUserPlane
from testbed.ran.snssai import Snssai

UE_SILENCE = 10.0  # a UE id heard from a new address is taken over only after this much silence
UE_GONE = 30.0  # a UE silent this long (no heartbeat: it crashed or its node went away) is forgotten
PENDING_HOLD = 60.0  # an unanswered Registration Request is sent to the AMF again only after this long


def _is_registration_request(nas: bytes) -> bool:
    return len(nas) >= 3 and nas[0] == 0x7E and nas[1] & 0x0F == 0 and nas[2] == 0x41


class Gnb:
    """One gNB: its UEs' procedures between the radio (GnbUserPlane) and the AMF (AmfLink)."""

    def __init__(self, cfg: dict[str, Any], log: Log, status: StatusFile, loop: Loop) -> None:
        self.log = log
        self.status_file = status
        self.loop = loop
        self.name = str(cfg.get("name", "gnb"))
        self.address = str(IPv4Address(need(cfg, "address", str)))
        self.gnb_id = int(need(cfg, "gnb_id", int))
        self.gnb_id_bits = int(cfg.get("gnb_id_bits", 32))
        self.nci = int(need(cfg, "nci", int))
        self.tac = int(need(cfg, "tac", int))
        self.plmn = str(need(cfg, "plmn", str))
        amf = need(cfg, "amf", dict)
        amf_addr = (str(IPv4Address(amf["address"])), int(amf.get("port", n2.PORT)))
        transport_pref = str(cfg.get("n2_transport", "auto"))
        self.slices = [Snssai(int(s["sst"]), s.get("sd")) for s in cfg.get("slices", [])]
        self.dscp_by_fiveqi = {int(k): int(v) for k, v in cfg.get("dscp_by_fiveqi", {}).items()}
        self.planned: dict[int, dict[str, Any]] = {int(u["ue_id"]): u for u in cfg.get("ues", [])}
        self.max_ues = int(cfg.get("max_ues", 4096))
        rls_port = int(cfg.get("rls_port", rls.PORT))
        gtpu_port = int(cfg.get("gtpu_port", gtpu.PORT))
        self.ctx = UeContexts(self.planned)
        self.ues = self.ctx.ues
        self.drop = Drops(log)
        self.counters: Counter[str] = Counter()
        self.up = GnbUserPlane(self.address, rls_port, gtpu_port, self.ctx.ul_sessions, self.ctx.dl_sessions,
                               self.on_rls_control, self.drop, log, loop)
        self.n2 = AmfLink(amf_addr, self.address, transport_pref, self._setup_request, self, lambda: len(self.ues),
                          self._release_all, log, status, loop, self.counters)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        transport = self.n2.choose_transport()
        self.up.open()
        self.loop.every(1.0, self._tick)
        amf = self.n2.amf
        self.log("start", address=self.address, gnb_id=self.gnb_id, nci=f"{self.nci:#011x}", tac=self.tac,
                 plmn=self.plmn, n2=f"{transport}/{amf[1]}", amf=amf[0], rls=f"udp/{self.up.rls_port}",
                 gtpu=f"udp/{self.up.gtpu_port}")
        self.n2.connect()

    def close(self) -> None:
        for ue in list(self.ues.values()):
            self.up.send_rls(ue, rls.RELEASE)
        self.n2.close()
        self.up.close()

    def _tick(self) -> None:
        now = time.monotonic()
        for ue in [u for u in self.ues.values() if now - u.last_seen > UE_GONE]:
            self.log("ue-lost", ue=ue.name or ue.ue_id, silent_s=round(now - ue.last_seen, 1),
                     sessions=len(ue.sessions))
            self.ctx.forget(ue)
        self.status_file.dirty = True
        self.status_file.maybe_write(self.status)

    # ------------------------------------------------------------------ N2

    def _setup_request(self) -> bytes:
        return ngap.ng_setup_request(self.gnb_id, self.plmn, self.tac, self.slices, self.name, self.gnb_id_bits)

    def _release_all(self) -> None:
        """N2 is gone: every UE is told (RLS RELEASE) and forgotten; they register again."""
        for ue in list(self.ues.values()):
            self.up.send_rls(ue, rls.RELEASE)
            self.ctx.forget(ue)

    # ------------------------------------------------------------------ UE procedures (N2)

    def _ue_of(self, msg: ngap.Ngap) -> GnbUe | None:
        """The UE a downlink NGAP message is for (learning its AMF UE id), or None, counted and logged."""
        ue = self.ctx.by_ran.get(msg.ran_ue_id)
        if ue is None:
            self.counters["ngap_unknown_ue"] += 1
            self.log("ngap-unknown-ue", procedure=msg.procedure, ran_ue_id=msg.ran_ue_id)
            return None
        ue.amf_ue_id = msg.amf_ue_id
        return ue

    def n2_DownlinkNASTransport(self, msg: ngap.Ngap) -> None:
        ue = self._ue_of(msg)
        if ue is None:
            return
        self.up.send_rls(ue, rls.NAS, msg.nas)
        self.counters["nas_down"] += 1

    def n2_PDUSessionResourceSetupRequest(self, msg: ngap.Ngap) -> None:
        ue = self._ue_of(msg)
        if ue is None:
            return
        done, nas_out = [], []
        for item in msg.sessions:
            if item.ul is None or item.qfi is None:
                self.log("session-setup-refused", ue=ue.name, psi=item.psi, reason="no UL tunnel or QoS flow")
                continue
            old = ue.sessions.get(item.psi)
            if old is not None:
                self.ctx.drop_session(old)
            dscp = self.dscp_by_fiveqi.get(item.fiveqi or 0, 0)
            dl_teid = self.ctx.dl_teid(ue, item.psi)
            s = GnbSession(ue, item.psi, item.ul, item.qfi, item.fiveqi, dscp, dl_teid,
                           self.up.socket_for(dscp, str(item.ul.address)))
            self.ctx.add_session(s)
            done.append((item.psi, item.qfi, ngap.Tunnel(IPv4Address(self.address), dl_teid)))
            if item.nas:
                nas_out.append(item.nas)
            self.counters["sessions_set_up"] += 1
            self.log("session-setup", ue=ue.name or ue.ue_id, psi=item.psi, upf=s.upf, ul_teid=f"{s.ul_teid:#010x}",
                     dl_teid=f"{dl_teid:#010x}", qfi=s.qfi, fiveqi=s.fiveqi, dscp=dscp)
        # answer first, so the core has programmed the DL tunnel by the time the UE starts sending
        self.n2.send(ngap.setup_response_tunnels(msg.amf_ue_id, msg.ran_ue_id, done))
        for nas in nas_out:
            self.up.send_rls(ue, rls.NAS, nas)

    def n2_PDUSessionResourceModifyRequest(self, msg: ngap.Ngap) -> None:
        """The core moved sessions to another UPF (its MEC UPF lost, or back): uplink goes to the new tunnel."""
        ue = self._ue_of(msg)
        if ue is None:
            return
        done = []
        for item in msg.sessions:
            s = ue.sessions.get(item.psi)
            if s is None or item.ul is None:
                self.log("session-modify-refused", ue=ue.name, psi=item.psi, reason="no such session or no UL tunnel")
                continue
            old = s.upf
            s.retarget(item.ul, self.up.socket_for(s.dscp, str(item.ul.address)))
            done.append((item.psi, item.ul))
            self.counters["sessions_modified"] += 1
            self.log("session-modify", ue=ue.name or ue.ue_id, psi=item.psi, upf=s.upf, previous_upf=old,
                     ul_teid=f"{s.ul_teid:#010x}")
        self.n2.send(ngap.modify_response(msg.amf_ue_id, msg.ran_ue_id, done))

    # ------------------------------------------------------------------ radio control (RLS)

    def on_rls_control(self, hdr: rls.Header, payload: bytes, addr: tuple[str, int]) -> None:
        ue = self.ues.get(hdr.ue_id)
        if ue is not None and ue.addr != addr:
            if time.monotonic() - ue.last_seen < UE_SILENCE:
                self.drop("ue-id-conflict", src=addr[0], ue_id=hdr.ue_id)
                return
            self.log("ue-moved", ue=ue.name or ue.ue_id, old=ue.addr[0], new=addr[0])
            self.ctx.forget(ue)
            ue = None
        if hdr.type == rls.HEARTBEAT:
            if self.n2.state != "ready":  # a cell without its core is not on the air: no answer to cell search
                self.counters["heartbeats_before_ng_setup"] += 1
                return
            if ue is None:
                if len(self.ues) >= self.max_ues:
                    self.drop("too-many-ues", src=addr[0])
                    return
                planned = self.planned.get(hdr.ue_id)
                ue = GnbUe(hdr.ue_id, addr, planned.get("name") if planned else None)
                self.ues[hdr.ue_id] = ue
                self.status_file.dirty = True
                self.log("ue-attach", ue=ue.name or hdr.ue_id, ue_id=hdr.ue_id, address=addr[0])
            ue.last_seen = time.monotonic()
            self.up.send_rls(ue, rls.HEARTBEAT_ACK)
            return
        if ue is None:
            self.drop("rls-before-heartbeat", src=addr[0], ue_id=hdr.ue_id)
            return
        ue.last_seen = time.monotonic()
        if hdr.type == rls.RELEASE:
            self.log("ue-release", ue=ue.name or ue.ue_id, sessions=len(ue.sessions))
            self.ctx.forget(ue)
            self.status_file.dirty = True
            return
        if hdr.type != rls.NAS:
            self.drop("unexpected-rls", src=addr[0], type=rls.TYPE_NAMES.get(hdr.type))
            return
        if self.n2.state != "ready":
            self.drop("n2-not-ready", ue=ue.name or ue.ue_id)
            return
        self.counters["nas_up"] += 1
        if _is_registration_request(payload):
            if ue.amf_ue_id is None and ue.pending == payload and time.monotonic() - ue.pending_at < PENDING_HOLD:
                # the UE's retransmission (T3510) of a request the AMF has not answered yet: N2 is reliable,
                # the answer is on its way; a second InitialUEMessage would only make a busy AMF work twice
                self.counters["registration_retransmissions_absorbed"] += 1
                return
            ue.pending, ue.pending_at = payload, time.monotonic()
            for s in list(ue.sessions.values()):
                self.ctx.drop_session(s)
            if ue.ran_ue_id is not None:
                self.ctx.by_ran.pop(ue.ran_ue_id, None)
            ue.ran_ue_id, ue.amf_ue_id = self.ctx.new_ran_id(), None
            self.ctx.by_ran[ue.ran_ue_id] = ue
            self.n2.send(ngap.initial_ue_message(ue.ran_ue_id, payload, self.plmn, self.nci, self.tac))
            self.log("initial-ue-message", ue=ue.name or ue.ue_id, ran_ue_id=ue.ran_ue_id)
            return
        if ue.amf_ue_id is None:
            self.drop("no-n2-context", ue=ue.name or ue.ue_id)
            return
        self.n2.send(ngap.uplink_nas_transport(ue.amf_ue_id, ue.ran_ue_id, payload, self.plmn, self.nci, self.tac))

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        ues = [{"ue_id": u.ue_id, "name": u.name, "address": u.addr[0], "ran_ue_id": u.ran_ue_id,
                "amf_ue_id": u.amf_ue_id, "sessions": [s.view() for s in u.sessions.values()]}
               for u in self.ues.values()]
        dl_sessions = self.ctx.dl_sessions
        return {
            "program": "gnb", "name": self.name, "address": self.address, "pid": os.getpid(),
            "n2": self.n2.view(),
            "gnb_id": self.gnb_id, "nci": self.nci, "tac": self.tac, "plmn": self.plmn,
            "counters": {"ues": len(ues), "sessions": len(dl_sessions),
                         "ul_packets": sum(s.ul_packets for s in dl_sessions.values()),
                         "dl_packets": sum(s.dl_packets for s in dl_sessions.values()), **self.counters},
            "drops": self.up.drops(),
            "sends": {"n3": self.up.ul_batch.stats(), "rls": self.up.dl_batch.stats()},
            "ues": ues,
        }


def main(argv: list[str] | None = None) -> int:
    return daemon.main("gnb", __doc__, Gnb, argv)


if __name__ == "__main__":
    raise SystemExit(main())
