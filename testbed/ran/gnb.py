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
  PDU Session Container with the QFI, outer DSCP of the session's 5QI through
  one sending socket per DSCP value); G-PDUs on UDP 2152 -> the session of their
  DL TEID -> RLS DATA to the UE. Dropped and counted by reason: `unknown-session`
  (RLS data for no session), `wrong-ue-address` (RLS data for a session from
  another address than its UE's), `unknown-teid`, `unknown-upf` (G-PDU for a
  session from another address than its UPF), `malformed`, `not-gpdu`.
"""
from __future__ import annotations

import os
import socket
import struct
import time
from collections import Counter
from ipaddress import IPv4Address
from typing import Any

from testbed.ran import daemon, gso, gtpu, n2, ngap, rls
from testbed.ran.daemon import Log, Loop, StatusFile, need
from testbed.ran.plan import Snssai

BATCH = 256
BUF = 65536 + gtpu.HEADER_LEN
DL_TEID_SPARE = 0x2800_0000  # DL TEIDs outside the plan's (0x2000_0000 + n) come from here
UE_SILENCE = 10.0  # a UE id heard from a new address is taken over only after this much silence
UE_GONE = 30.0  # a UE silent this long (no heartbeat: it crashed or its node went away) is forgotten
PENDING_HOLD = 60.0  # an unanswered Registration Request is sent to the AMF again only after this long
_TEID = struct.Struct("!I")
_UEID = struct.Struct("!I")


def _is_registration_request(nas: bytes) -> bool:
    return len(nas) >= 3 and nas[0] == 0x7E and nas[1] & 0x0F == 0 and nas[2] == 0x41


class GnbUe:
    __slots__ = ("ue_id", "addr", "name", "ran_ue_id", "amf_ue_id", "last_seen", "sessions", "attached", "pending",
                 "pending_at")

    def __init__(self, ue_id: int, addr: tuple[str, int], name: str | None) -> None:
        self.ue_id = ue_id
        self.addr = addr
        self.name = name
        self.ran_ue_id: int | None = None
        self.amf_ue_id: int | None = None
        self.last_seen = time.monotonic()
        self.sessions: dict[int, GnbSession] = {}
        self.attached = time.time()
        self.pending = b""  # the Registration Request last sent in an InitialUEMessage
        self.pending_at = 0.0


class GnbSession:
    __slots__ = ("ue", "psi", "ul_teid", "upf", "qfi", "fiveqi", "dscp", "dl_teid", "header", "sock", "rls_header",
                 "ul_packets", "ul_bytes", "dl_packets", "dl_bytes")

    def __init__(self, ue: GnbUe, psi: int, ul: ngap.Tunnel, qfi: int, fiveqi: int | None, dscp: int,
                 dl_teid: int, sock: socket.socket) -> None:
        self.ue = ue
        self.psi = psi
        self.ul_teid = ul.teid
        self.upf = str(ul.address)
        self.qfi = qfi
        self.fiveqi = fiveqi
        self.dscp = dscp
        self.dl_teid = dl_teid
        self.header = gtpu.template(ul.teid, qfi, uplink=True)
        self.sock = sock
        self.rls_header = rls.encode(rls.DATA, ue.ue_id, psi=psi)
        self.ul_packets = self.ul_bytes = self.dl_packets = self.dl_bytes = 0

    def view(self) -> dict[str, Any]:
        return {"psi": self.psi, "ul_teid": self.ul_teid, "dl_teid": self.dl_teid, "upf": self.upf, "qfi": self.qfi,
                "fiveqi": self.fiveqi, "dscp": self.dscp, "ul_packets": self.ul_packets, "ul_bytes": self.ul_bytes,
                "dl_packets": self.dl_packets, "dl_bytes": self.dl_bytes}


class Gnb:
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
        self.amf = (str(IPv4Address(amf["address"])), int(amf.get("port", n2.PORT)))
        self.transport_pref = str(cfg.get("n2_transport", "auto"))
        self.slices = [Snssai(int(s["sst"]), s.get("sd")) for s in cfg.get("slices", [])]
        self.dscp_by_fiveqi = {int(k): int(v) for k, v in cfg.get("dscp_by_fiveqi", {}).items()}
        self.planned: dict[int, dict[str, Any]] = {int(u["ue_id"]): u for u in cfg.get("ues", [])}
        self.max_ues = int(cfg.get("max_ues", 4096))
        self.rls_port = int(cfg.get("rls_port", rls.PORT))
        self.gtpu_port = int(cfg.get("gtpu_port", gtpu.PORT))
        self.transport = ""
        self.n2: n2.Conn | None = None
        self.n2_state = "down"
        self.n2_retry = 0.5
        self.ues: dict[int, GnbUe] = {}
        self.by_ran: dict[int, GnbUe] = {}
        self.ul_sessions: dict[int, GnbSession] = {}  # ue_id << 8 | psi
        self.dl_sessions: dict[int, GnbSession] = {}  # DL TEID
        self.next_ran_id = 1
        self.next_spare_teid = DL_TEID_SPARE
        self.dscp_socks: dict[tuple[int, str], socket.socket] = {}
        self.drops: Counter[str] = Counter()
        self._drop_logged: dict[str, tuple[float, int]] = {}
        self.counters: Counter[str] = Counter()
        self.rls_sock: socket.socket | None = None
        self.gtp: socket.socket | None = None
        self.ul_batch = gso.Batch()  # G-PDU bursts towards UPFs
        self.dl_batch = gso.Batch()  # RLS DATA bursts towards UEs
        self.gtp_head = bytearray(gtpu.HEADER_LEN)  # where a G-PDU's header lands (see on_gtp)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.transport = n2.choose(self.transport_pref)
        self.rls_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        daemon.set_buffers(self.rls_sock)
        self.rls_sock.bind((self.address, self.rls_port))
        self.rls_sock.setblocking(False)
        self.gtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        daemon.set_buffers(self.gtp)
        self.gtp.bind((self.address, self.gtpu_port))
        self.gtp.setblocking(False)
        self.loop.add_reader(self.rls_sock.fileno(), self.on_rls)
        self.loop.add_reader(self.gtp.fileno(), self.on_gtp)
        self.loop.every(1.0, self._tick)
        self.log("start", address=self.address, gnb_id=self.gnb_id, nci=f"{self.nci:#011x}", tac=self.tac,
                 plmn=self.plmn, n2=f"{self.transport}/{self.amf[1]}", amf=self.amf[0], rls=f"udp/{self.rls_port}",
                 gtpu=f"udp/{self.gtpu_port}")
        self.connect_n2()

    def close(self) -> None:
        for ue in list(self.ues.values()):
            self._send_rls(ue, rls.RELEASE)
        if self.n2 is not None:
            self.n2.close()
        for s in [self.rls_sock, self.gtp, *self.dscp_socks.values()]:
            if s is not None:
                s.close()

    def _tick(self) -> None:
        now = time.monotonic()
        for ue in [u for u in self.ues.values() if now - u.last_seen > UE_GONE]:
            self.log("ue-lost", ue=ue.name or ue.ue_id, silent_s=round(now - ue.last_seen, 1),
                     sessions=len(ue.sessions))
            self._forget(ue)
        self.status_file.dirty = True
        self.status_file.maybe_write(self.status)

    # ------------------------------------------------------------------ N2

    def connect_n2(self) -> None:
        try:
            sock = n2.connect(self.amf[0], self.amf[1], self.transport, source=self.address)
        except OSError as exc:
            self.n2_state = "connecting"
            self.log("n2-connect-failed", amf=f"{self.amf[0]}:{self.amf[1]}", transport=self.transport,
                     error=exc.strerror or str(exc), retry_s=self.n2_retry)
            if self.transport_pref == "auto" and n2.sctp_available():
                # SCTP may be filtered on the way (the AMF listens on both): alternate until one connects
                self.transport = n2.TCP if self.transport == n2.SCTP else n2.SCTP
            self.loop.call_later(self.n2_retry, self.connect_n2)
            self.n2_retry = min(self.n2_retry * 2, 5.0)
            return
        self.n2 = n2.Conn(sock, self.transport, self.amf)
        self.loop.add_reader(self.n2.fileno(), self.on_n2)
        self.n2_state = "setup-sent"
        self._n2_send(ngap.ng_setup_request(self.gnb_id, self.plmn, self.tac, self.slices, self.name,
                                           self.gnb_id_bits))
        self.log("ng-setup-request", amf=self.amf[0], transport=self.transport)

    def _n2_send(self, pdu: bytes) -> None:
        if self.n2 is None:
            return
        try:
            self.n2.send(pdu)
        except OSError as exc:
            self.n2_lost(f"send failed: {exc}")

    def n2_lost(self, why: str) -> None:
        self.log("n2-lost", amf=self.amf[0], reason=why, ues_released=len(self.ues))
        if self.n2 is not None:
            self.loop.remove_reader(self.n2.fileno())
            self.n2.close()
            self.n2 = None
        for ue in list(self.ues.values()):
            self._send_rls(ue, rls.RELEASE)
            self._forget(ue)
        self.n2_state = "connecting"
        self.n2_retry = 0.5
        self.loop.call_later(self.n2_retry, self.connect_n2)

    def on_n2(self) -> None:
        try:
            pdus = self.n2.receive()
        except OSError as exc:
            self.n2_lost(str(exc))
            return
        if pdus is None:
            self.n2_lost("closed by the AMF")
            return
        for pdu in pdus:
            try:
                msg = ngap.decode(pdu)
            except Exception as exc:  # broken APER, or a valid PDU missing what the emulation reads
                self.counters["ngap_undecodable"] += 1
                self.log("ngap-error", error=str(exc)[:200])
                continue
            self.status_file.dirty = True
            handler = getattr(self, "n2_" + msg.procedure, None)
            if handler is None:
                self.log("ngap-ignored", procedure=msg.procedure)
            else:
                try:
                    handler(msg)
                except Exception as exc:  # one odd message must not take the gNB down: log it, go on
                    self.counters["handler_errors"] += 1
                    self.log("ngap-handler-error", procedure=msg.procedure, error=f"{type(exc).__name__}: {exc}"[:300])

    def n2_NGSetupResponse(self, msg: ngap.Ngap) -> None:
        self.n2_state = "ready"
        self.n2_retry = 0.5
        self.log("ng-setup", result="accepted", amf=msg.name, slices=",".join(str(s) for s in msg.slices))

    def n2_NGSetupFailure(self, msg: ngap.Ngap) -> None:
        self.n2_state = "setup-failed"
        self.log("ng-setup", result="failed", cause=msg.cause)
        self.loop.remove_reader(self.n2.fileno())
        self.n2.close()
        self.n2 = None
        self.loop.call_later(5.0, self.connect_n2)

    def _ue_of(self, msg: ngap.Ngap) -> GnbUe | None:
        """The UE a downlink NGAP message is for (learning its AMF UE id), or None, counted and logged."""
        ue = self.by_ran.get(msg.ran_ue_id)
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
        self._send_rls(ue, rls.NAS, msg.nas)
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
                self._drop_session(old)
            dscp = self.dscp_by_fiveqi.get(item.fiveqi or 0, 0)
            dl_teid = self._dl_teid(ue, item.psi)
            s = GnbSession(ue, item.psi, item.ul, item.qfi, item.fiveqi, dscp, dl_teid,
                           self.socket_for(dscp, str(item.ul.address)))
            ue.sessions[item.psi] = s
            self.ul_sessions[ue.ue_id << 8 | item.psi] = s
            self.dl_sessions[dl_teid] = s
            done.append((item.psi, item.qfi, ngap.Tunnel(IPv4Address(self.address), dl_teid)))
            if item.nas:
                nas_out.append(item.nas)
            self.counters["sessions_set_up"] += 1
            self.log("session-setup", ue=ue.name or ue.ue_id, psi=item.psi, upf=s.upf, ul_teid=f"{s.ul_teid:#010x}",
                     dl_teid=f"{dl_teid:#010x}", qfi=s.qfi, fiveqi=s.fiveqi, dscp=dscp)
        # answer first, so the core has programmed the DL tunnel by the time the UE starts sending
        self._n2_send(ngap.setup_response_tunnels(msg.amf_ue_id, msg.ran_ue_id, done))
        for nas in nas_out:
            self._send_rls(ue, rls.NAS, nas)

    def _dl_teid(self, ue: GnbUe, psi: int) -> int:
        planned = self.planned.get(ue.ue_id, {}).get("dl_teids", {}).get(str(psi))
        if planned is not None and int(planned) not in self.dl_sessions:
            return int(planned)
        while self.next_spare_teid in self.dl_sessions:
            self.next_spare_teid += 1
        self.next_spare_teid += 1
        return self.next_spare_teid - 1

    def socket_for(self, dscp: int, upf: str) -> socket.socket:
        """The sending socket towards one UPF with one outer DSCP (IP_TOS), connected: the route is cached."""
        s = self.dscp_socks.get((dscp, upf))
        if s is None:
            s = self.dscp_socks[(dscp, upf)] = daemon.dscp_socket(self.address, upf, self.gtpu_port, dscp)
        return s

    # ------------------------------------------------------------------ contexts

    def _drop_session(self, s: GnbSession) -> None:
        s.ue.sessions.pop(s.psi, None)
        self.ul_sessions.pop(s.ue.ue_id << 8 | s.psi, None)
        if self.dl_sessions.get(s.dl_teid) is s:
            del self.dl_sessions[s.dl_teid]

    def _forget(self, ue: GnbUe) -> None:
        for s in list(ue.sessions.values()):
            self._drop_session(s)
        if ue.ran_ue_id is not None and self.by_ran.get(ue.ran_ue_id) is ue:
            del self.by_ran[ue.ran_ue_id]
        self.ues.pop(ue.ue_id, None)

    def _send_rls(self, ue: GnbUe, msg_type: int, payload: bytes = b"") -> None:
        try:
            self.rls_sock.sendto(rls.encode(msg_type, ue.ue_id, payload), ue.addr)
        except OSError as exc:
            self.log("rls-send-error", ue=ue.name or ue.ue_id, error=str(exc))

    def drop(self, reason: str, **fields: Any) -> None:
        self.drops[reason] += 1
        now = time.monotonic()
        last, since = self._drop_logged.get(reason, (0.0, 0))
        if now - last >= 1.0:
            self.log("drop", reason=reason, since_last=since + 1, total=self.drops[reason], **fields)
            self._drop_logged[reason] = (now, 0)
        else:
            self._drop_logged[reason] = (last, since + 1)

    # ------------------------------------------------------------------ radio (RLS)

    def on_rls(self) -> None:
        """RLS from UEs: DATA becomes a G-PDU in place (the GTP-U header overwrites the RLS one and 8 octets
        of headroom) in the burst towards its UPF; anything else is control."""
        sock, batch, ul_sessions = self.rls_sock, self.ul_batch, self.ul_sessions
        buf, view = batch.buf, batch.view
        for _ in range(BATCH):
            off = batch.used
            try:
                n, addr = sock.recvfrom_into(view[off + 8:off + 8 + BUF])
            except BlockingIOError:
                break
            if n < rls.HEADER_LEN or buf[off + 8] != rls.MAGIC:
                self.drop("malformed-rls", src=addr[0])
                continue
            if buf[off + 9] == rls.DATA:
                ue_id = _UEID.unpack_from(buf, off + 12)[0]
                s = ul_sessions.get(ue_id << 8 | buf[off + 10])
                if s is None:
                    self.drop("unknown-session", src=addr[0], ue_id=ue_id, psi=buf[off + 10])
                    continue
                if addr[0] != s.ue.addr[0]:
                    self.drop("wrong-ue-address", src=addr[0], ue=s.ue.name)
                    continue
                buf[off:off + 16] = s.header
                buf[off + 2] = n >> 8  # GTP-U length: the packet (n - 8) + 8 optional/extension octets
                buf[off + 3] = n & 0xFF
                batch.push(s.sock, None, n + 8)
                s.ul_packets += 1
                s.ul_bytes += n - rls.HEADER_LEN
                continue
            try:
                hdr = rls.parse(buf, n, off + 8)
            except rls.RlsError:
                self.drop("malformed-rls", src=addr[0])
                continue
            self.on_rls_control(hdr, bytes(view[off + 16:off + 8 + n]), addr)
        batch.flush()

    def on_rls_control(self, hdr: rls.Header, payload: bytes, addr: tuple[str, int]) -> None:
        ue = self.ues.get(hdr.ue_id)
        if ue is not None and ue.addr != addr:
            if time.monotonic() - ue.last_seen < UE_SILENCE:
                self.drop("ue-id-conflict", src=addr[0], ue_id=hdr.ue_id)
                return
            self.log("ue-moved", ue=ue.name or ue.ue_id, old=ue.addr[0], new=addr[0])
            self._forget(ue)
            ue = None
        if hdr.type == rls.HEARTBEAT:
            if self.n2_state != "ready":  # a cell without its core is not on the air: no answer to cell search
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
            self._send_rls(ue, rls.HEARTBEAT_ACK)
            return
        if ue is None:
            self.drop("rls-before-heartbeat", src=addr[0], ue_id=hdr.ue_id)
            return
        ue.last_seen = time.monotonic()
        if hdr.type == rls.RELEASE:
            self.log("ue-release", ue=ue.name or ue.ue_id, sessions=len(ue.sessions))
            self._forget(ue)
            self.status_file.dirty = True
            return
        if hdr.type != rls.NAS:
            self.drop("unexpected-rls", src=addr[0], type=rls.TYPE_NAMES.get(hdr.type))
            return
        if self.n2_state != "ready":
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
                self._drop_session(s)
            if ue.ran_ue_id is not None:
                self.by_ran.pop(ue.ran_ue_id, None)
            ue.ran_ue_id, ue.amf_ue_id = self._new_ran_id(), None
            self.by_ran[ue.ran_ue_id] = ue
            self._n2_send(ngap.initial_ue_message(ue.ran_ue_id, payload, self.plmn, self.nci, self.tac))
            self.log("initial-ue-message", ue=ue.name or ue.ue_id, ran_ue_id=ue.ran_ue_id)
            return
        if ue.amf_ue_id is None:
            self.drop("no-n2-context", ue=ue.name or ue.ue_id)
            return
        self._n2_send(ngap.uplink_nas_transport(ue.amf_ue_id, ue.ran_ue_id, payload, self.plmn, self.nci, self.tac))

    def _new_ran_id(self) -> int:
        while self.next_ran_id in self.by_ran or self.next_ran_id == 0:
            self.next_ran_id = (self.next_ran_id + 1) & 0xFFFF_FFFF
        rid = self.next_ran_id
        self.next_ran_id = (self.next_ran_id + 1) & 0xFFFF_FFFF
        return rid

    # ------------------------------------------------------------------ N3 downlink

    def on_gtp(self) -> None:
        """G-PDUs from UPFs -> RLS DATA bursts to UEs. A G-PDU is scattered on receipt: its 16-octet header
        (the shape this emulation sends) into a scratch buffer, the packet straight into the burst behind
        8 octets for its RLS header; other header shapes are put back together and moved (rare)."""
        sock, batch, dl_sessions, rls_sock = self.gtp, self.dl_batch, self.dl_sessions, self.rls_sock
        buf, view, head = batch.buf, batch.view, self.gtp_head
        for _ in range(BATCH):
            off = batch.used
            try:
                n, _anc, _flags, (src, sport) = sock.recvmsg_into([head, view[off + 8:off + 8 + BUF]])
            except BlockingIOError:
                break
            if n >= 16 and head[0] == 0x34 and head[1] == gtpu.G_PDU and head[11] == 0x85 and head[12] == 1 \
                    and head[15] == 0:
                teid = _TEID.unpack_from(head, 4)[0]
                length = min(n, 8 + (head[2] << 8 | head[3])) - 16
                if length < 0:
                    self.drop("malformed", src=src)
                    continue
            else:
                whole = bytes(head[:min(n, 16)]) + bytes(view[off + 8:off + 8 + max(0, n - 16)])
                try:
                    p = gtpu.parse(whole, n)
                except gtpu.GtpError:
                    self.drop("malformed", src=src)
                    continue
                if p.msg_type == gtpu.ECHO_REQUEST:
                    sock.sendto(gtpu.echo_response(p.seq or 0), (src, sport))
                    continue
                if p.msg_type != gtpu.G_PDU:
                    self.drop("not-gpdu", src=src, type=p.msg_type)
                    continue
                teid, length = p.teid, p.length
                buf[off + 8:off + 8 + length] = whole[p.offset:p.offset + length]
            s = dl_sessions.get(teid)
            if s is None:
                self.drop("unknown-teid", src=src, teid=f"{teid:#010x}")
                continue
            if src != s.upf:
                self.drop("unknown-upf", src=src, teid=f"{teid:#010x}")
                continue
            buf[off:off + 8] = s.rls_header
            batch.push(rls_sock, s.ue.addr, 8 + length)
            s.dl_packets += 1
            s.dl_bytes += length
        batch.flush()

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        ues = [{"ue_id": u.ue_id, "name": u.name, "address": u.addr[0], "ran_ue_id": u.ran_ue_id,
                "amf_ue_id": u.amf_ue_id, "sessions": [s.view() for s in u.sessions.values()]}
               for u in self.ues.values()]
        return {
            "program": "gnb", "name": self.name, "address": self.address, "pid": os.getpid(),
            "n2": {"transport": self.transport, "sctp_available": self.transport == n2.SCTP or n2.sctp_available(),
                   "amf": f"{self.amf[0]}:{self.amf[1]}", "state": self.n2_state},
            "gnb_id": self.gnb_id, "nci": self.nci, "tac": self.tac, "plmn": self.plmn,
            "counters": {"ues": len(ues), "sessions": len(self.dl_sessions),
                         "ul_packets": sum(s.ul_packets for s in self.dl_sessions.values()),
                         "dl_packets": sum(s.dl_packets for s in self.dl_sessions.values()), **self.counters},
            "drops": {**self.drops, **({"n3-send": self.ul_batch.errors} if self.ul_batch.errors else {}),
                      **({"rls-send": self.dl_batch.errors} if self.dl_batch.errors else {})},
            "sends": {"n3": self.ul_batch.stats(), "rls": self.dl_batch.stats()},
            "ues": ues,
        }


def main(argv: list[str] | None = None) -> int:
    return daemon.main("gnb", __doc__, Gnb, argv)


if __name__ == "__main__":
    raise SystemExit(main())
