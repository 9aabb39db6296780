"""What a gNB knows of its UEs and their sessions, and the ids it hands out for them.

Kept apart from the gNB's procedures (gnb.py) and packet loops (gnbuser.py),
which both read it: a UE is known by its RLS UE id, by its RAN UE NGAP id once
it sent a Registration Request, and each session by (UE id, PSI) for the
uplink and by its DL TEID for the downlink. DL TEIDs are the plan's when the
config names one for the UE and session, else the next spare one.
"""
from __future__ import annotations

import time
from typing import Any

from testbed.ran import gtpu, ngap, rls
from testbed.ran.daemon import DscpPeer

DL_TEID_SPARE = 0x2800_0000  # DL TEIDs outside the plan's (0x2000_0000 + n) come from here


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
                 dl_teid: int, sock: DscpPeer) -> None:
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

    def retarget(self, ul: ngap.Tunnel, sock: DscpPeer) -> None:
        """Send uplink to another UPF (the core moved the session: a PDU Session Resource Modify)."""
        self.ul_teid = ul.teid
        self.upf = str(ul.address)
        self.header = gtpu.template(ul.teid, self.qfi, uplink=True)
        self.sock = sock

    def view(self) -> dict[str, Any]:
        return {"psi": self.psi, "ul_teid": self.ul_teid, "dl_teid": self.dl_teid, "upf": self.upf, "qfi": self.qfi,
                "fiveqi": self.fiveqi, "dscp": self.dscp, "ul_packets": self.ul_packets, "ul_bytes": self.ul_bytes,
                "dl_packets": self.dl_packets, "dl_bytes": self.dl_bytes}


class UeContexts:
    """The gNB's UEs and sessions, indexed as the procedures and the packet loops look them up."""

    def __init__(self, planned: dict[int, dict[str, Any]]) -> None:
        self.planned = planned
        self.ues: dict[int, GnbUe] = {}
        self.by_ran: dict[int, GnbUe] = {}
        self.ul_sessions: dict[int, GnbSession] = {}  # ue_id << 8 | psi
        self.dl_sessions: dict[int, GnbSession] = {}  # DL TEID
        self.next_ran_id = 1
        self.next_spare_teid = DL_TEID_SPARE

    def add_session(self, s: GnbSession) -> None:
        s.ue.sessions[s.psi] = s
        self.ul_sessions[s.ue.ue_id << 8 | s.psi] = s
        self.dl_sessions[s.dl_teid] = s

    def drop_session(self, s: GnbSession) -> None:
        s.ue.sessions.pop(s.psi, None)
        self.ul_sessions.pop(s.ue.ue_id << 8 | s.psi, None)
        if self.dl_sessions.get(s.dl_teid) is s:
            del self.dl_sessions[s.dl_teid]

    def forget(self, ue: GnbUe) -> None:
        for s in list(ue.sessions.values()):
            self.drop_session(s)
        if ue.ran_ue_id is not None and self.by_ran.get(ue.ran_ue_id) is ue:
            del self.by_ran[ue.ran_ue_id]
        self.ues.pop(ue.ue_id, None)

    def new_ran_id(self) -> int:
        while self.next_ran_id in self.by_ran or self.next_ran_id == 0:
            self.next_ran_id = (self.next_ran_id + 1) & 0xFFFF_FFFF
        rid = self.next_ran_id
        self.next_ran_id = (self.next_ran_id + 1) & 0xFFFF_FFFF
        return rid

    def dl_teid(self, ue: GnbUe, psi: int) -> int:
        planned = self.planned.get(ue.ue_id, {}).get("dl_teids", {}).get(str(psi))
        if planned is not None and int(planned) not in self.dl_sessions:
            return int(planned)
        while self.next_spare_teid in self.dl_sessions:
            self.next_spare_teid += 1
        self.next_spare_teid += 1
        return self.next_spare_teid - 1
