"""The 5G part of a topology: the plan, its 3GPP encodings, its configurations, and the built-in programs.

Pure data and encodings: the plan (who registers where, with which PDU
sessions, through which UPF: plan.py, upfs.py), the NAS/NGAP messages
(pycrate: nas.py, ngap.py), the core's admission (core.py), the UERANSIM /
Open5GS configurations of the same plan (configs.py, open5gs.py), and the
built-in emulation's programs with their configs (agents.py).

Layer: pure rules (beside testbed.slicing). It reads the topology model, node
kinds and the slice policy; the engine and everything above use it, never the
other way round. Imports are lazy: a UE process imports testbed.ran.ue and must
not pay for pydantic or pycrate.

The built-in emulation, real on the wire
========================================

Four standalone daemons, each `python -m testbed.ran.<prog> --config FILE.json
[--status FILE.json]`, started inside the testbed's nodes (the configs come
from agents.agents(topo, plan)). Each logs one line per event to stdout and
keeps a small JSON status file; SIGTERM stops it cleanly.

    UE node                 gNB node                    core node            UPF node              server
    ue.py                   gnb.py                      amf.py (AMF+SMF)     upf.py
    uesimtun0/1 (TUN) --RLS UDP 4997-- RLS --NGAP 38412 (SCTP|TCP)-- N2      upfn6 (TUN) -- N6 --> kernel routing
         (NAS, IP)           GTP-U UDP 2152 (N3) -------------------------> GTP-U 2152
                                                        N4 TCP 8805 (JSON) -> N4

- RLS, radio link simulation (rls.py), as UERANSIM does it: UDP 4997 between
  the UE's node address and its gNB's; an 8-octet header (0x03, message type,
  PDU session id, UE id) + payload: HEARTBEAT/ACK (cell search, link
  supervision), NAS (5G NAS to and from the AMF, the RRC layer left out),
  DATA (one user-plane IPv4 packet of a session), RELEASE.
- UE (ue.py): registers (Registration Request via the gNB), then one PDU
  Session Establishment Request per configured slice; each accepted session
  becomes a TUN uesimtunN with the session address and routes for the
  services its slice grants; TUN <-> RLS DATA. Rejects are logged with their
  cause and kept in the status file; the UE keeps running.
- gNB (gnb.py): NG setup with the AMF; NGAP over SCTP where the kernel has it,
  else TCP with a 4-octet length prefix per PDU (n2.py; which one is in the log
  and status); relays NAS (InitialUEMessage / UplinkNASTransport /
  DownlinkNASTransport); on PDUSessionResourceSetupRequest learns the UL TEID,
  UPF address and QFI, allocates the DL TEID (the plan's) and answers; user
  plane RLS DATA <-> GTP-U G-PDUs (gtpu.py: UDP 2152, one TEID per session and
  direction, a PDU Session Container with the QFI, outer DSCP from the
  session's 5QI set on each send: from port 2152 to port 2152, see daemon.DscpPeer).
- Core (amf.py): the NGAP server; admission by core.py against the plan's
  subscribers (#7 unknown SUPI, #62 no slice, #33 unsubscribed slice, #70
  DNN); UPF from the plan; programs the UPF over an emulated N4 (n4.py:
  JSON lines over TCP 8805, PFCP's port, but *not* PFCP); then
  PDUSessionResourceSetupRequest to the gNB, carrying the NAS accept for the UE.
- UPF (upf.py): GTP-U on UDP 2152, N4 on TCP 8805 (from the core only), a
  session table; drops and counts, by reason, GTP-U from a non-gNB address,
  unknown TEIDs, another gNB's TEID, inner sources that are not the session's
  address; decapsulates into the N6 TUN `upfn6` (forwarding on in its
  namespace, routes for the session pools through the TUN), so servers that
  route the pools via the UPF's address see the UE session address as source;
  downlink TUN -> session by destination -> GTP-U with the DL TEID to its gNB.

The user plane is a Python packet loop in each program: non-blocking sockets
and TUNs drained in batches straight into preallocated burst buffers, each
packet behind room for its next header (no packet is copied in Python), and
each burst for one peer leaves in one system call with UDP segmentation
(gso.py): the wire still carries one RLS or GTP-U datagram per packet, but the
kernel is entered once per burst. What is left is the kernel's per-packet
work, one hop per program.

Wire formats: rls.py (RLS), gtpu.py (GTP-U G-PDU), n2.py (NGAP framing),
n4.py (the emulated N4); NAS and NGAP themselves are nas.py / ngap.py
(pycrate), except on the UE, which reads the few downlink NAS messages it needs
with uenas.py (no pycrate: a UE process stays near 15 MiB resident).

Each program's module keeps its procedures and status; its other parts are
modules of their own: the UE's radio and user plane (ueradio.py) and PDU
sessions (uesessions.py); the gNB's N2 connection (gnbn2.py), UE contexts
(gnbctx.py) and packet loops (gnbuser.py); the core's N2 server
(n2server.py) and N4 clients (smf.py); the UPF's session table and N4 server
(upfn4.py).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"RanPlan": "testbed.ran.plan", "RanPlanError": "testbed.ran.plan", "ran_plan": "testbed.ran.plan"}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'testbed.ran' has no attribute {name!r}")
