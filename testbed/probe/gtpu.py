"""Attacks on the 5G user plane (pure planning from the RAN plan, the run's policy and the addresses).

The UPF is where a session's identity is checked: a G-PDU's TEID names the
session, the session belongs to one gNB, and the inner packet must come from
the session's address. Only then does the packet reach N6, where the slice's
rules hold for that address. Each attack crafts the packet an attacker would,
with a token in the inner packet, aimed at a server the session's slice *does*
grant (so only the UPF's checks, or the switch's refusal of the tunnel, can
stop it); the token reaching that server is a LEAK:

  gtpu-teid      a gNB sends a G-PDU with a TEID no session has (forged);
                 with the TEID of a session at another gNB (when a second gNB
                 shares the UPF); and with another session's TEID around a
                 packet from its own UE's session address (an inner source
                 that is not the TEID's session's)
  gtpu-non-gnb   a host that is not a gNB (a UE on its own link) sends a
                 valid G-PDU straight to the UPF: the switch must not even
                 deliver it to the UPF (watched there, inside the tunnel)
  spoof-inner    a UE sends, through its own session's TUN, a packet whose
                 source is another UE's session address: its gNB tunnels it
                 with the UE's own TEID, and the UPF must drop it
  ue-to-ue       a UE sends, through its own session, to another UE's session
                 address at the same UPF (another slice where there is one):
                 out of N6, the UPF's kernel would route it straight back in to
                 that UE, a path no switch sees; watched at the victim's TUN
  ue-to-upf      a UE sends, through its own session, to the UPF's own address
                 (its PFCP port): watched on the UPF's N6 TUN, where the packet
                 would go in to the UPF's own stack
"""
from __future__ import annotations

from traffic import packets as P

from testbed.probe.attacks import Attack, Hosts, Ids
from testbed.ran import gtpu, pfcp
from testbed.ran.plan import RanPlan, Session
from testbed.slicing.policy import INFRA, Policy

FORGED_TEID = 0x0BAD_BEEF
SPORT = 40020
UE_PORT = 443  # what a UE-to-UE attack knocks on (nothing listens; the capture at the victim's TUN decides)


def _target(pol: Policy, s: Session, h: Hosts) -> tuple[str, str, int] | None:
    """(server, proto, port) the session's slice grants its UE (TCP preferred), or None."""
    grants = sorted((g for g in pol.grants if g.src == s.ue and g.slice == s.slice and g.slice != INFRA
                     and g.dst in h.ip), key=lambda g: (g.proto != "tcp", g.dst, g.port))
    return (grants[0].dst, grants[0].proto, grants[0].port) if grants else None


def _inner(src_ip: str, dst_ip: str, proto: str, port: int, tok: bytes) -> bytes:
    if proto == "tcp":
        return P.ipv4(src_ip, dst_ip, 6, P.tcp(src_ip, dst_ip, SPORT, port, "S", tok))
    return P.ipv4(src_ip, dst_ip, 17, P.udp(src_ip, dst_ip, SPORT, port, tok))


def _gpdu(h: Hosts, sender: str, upf: str, teid: int, inner: bytes) -> bytes:
    """An uplink G-PDU (QFI 1) from `sender` to the UPF's GTP-U port, as a gNB would frame it."""
    return P.udp_frame(h.mac[sender], h.mac[upf], h.ip[sender], h.ip[upf], SPORT + 1, gtpu.PORT,
                       gtpu.encapsulate(teid, 1, inner, uplink=True))


def _through_the_upf(plan: RanPlan, sessions: list[Session], h: Hosts, ids: Ids) -> list[Attack]:
    """Per UPF, from a UE's session (written to its TUN, as its kernel would send it): to another UE's session
    at the same UPF, another slice's first (`ue-to-ue`: decapsulated into N6, the packet would come straight
    back out to that UE, a path no switch sees); and to the UPF's own address (`ue-to-upf`)."""
    out: list[Attack] = []
    for upf in plan.upfs:
        mine = [s for s in sessions if s.upf == upf.name and s.ue in h.via]
        pairs = [(s, x) for s in mine for x in sessions if x.upf == upf.name and x.ue != s.ue]
        pair = next((p for p in pairs if p[0].slice != p[1].slice), pairs[0] if pairs else None)
        if pair:
            s, x = pair
            i = ids()
            out.append(Attack(i, "ue-to-ue", f"{s.ue} ({s.slice}) -> {x.ue}'s session {x.address} ({x.slice}) "
                                             f"through {upf.name}", s.ue,
                              [_inner(str(s.address), str(x.address), "tcp", UE_PORT, P.token(i))],
                              [x.ue], f"tcp {s.address} -> {x.address}:{UE_PORT} written to {s.tun}", via=s.tun))
        if mine:
            s = mine[0]
            i = ids()
            out.append(Attack(i, "ue-to-upf", f"{s.ue} ({s.slice}) -> {upf.name}'s own address "
                                              f"{h.ip[upf.name]} through its session", s.ue,
                              [_inner(str(s.address), h.ip[upf.name], "udp", pfcp.PORT, P.token(i))],
                              [upf.name], f"udp {s.address} -> {h.ip[upf.name]}:{pfcp.PORT} written to {s.tun}",
                              via=s.tun))
    return out


def plan_gtpu_attacks(plan: RanPlan, pol: Policy, h: Hosts) -> list[Attack]:
    ids = Ids("g")
    out: list[Attack] = []
    sessions = [s for s in plan.sessions if s.ue in h.ip and s.gnb in h.ip and s.upf in h.ip]
    for upf in plan.upfs:
        mine = [(s, t) for s in sessions if s.upf == upf.name and (t := _target(pol, s, h)) is not None]
        if not mine:
            continue
        s, (dst, proto, port) = mine[0]
        i = ids()
        out.append(Attack(i, "gtpu-teid", f"{s.gnb} -> {upf.name}: G-PDU with a forged TEID {FORGED_TEID:#x} "
                                          f"-> {dst} {proto}/{port}", s.gnb,
                          [_gpdu(h, s.gnb, upf.name, FORGED_TEID, _inner(str(s.address), h.ip[dst], proto, port,
                                                                         P.token(i)))],
                          [dst], f"GTP-U TEID {FORGED_TEID:#x}, inner {s.address} -> {h.ip[dst]}:{port}"))
        other_gnb = next((g.name for g in plan.gnbs if g.name != s.gnb and g.name in h.ip
                          and any(x.gnb == g.name and x.upf == upf.name for x in sessions)), None)
        if other_gnb:
            i = ids()
            out.append(Attack(i, "gtpu-teid", f"{other_gnb} -> {upf.name}: G-PDU with {s.gnb}'s session TEID "
                                              f"{s.ul_teid:#x} ({s.ue} {s.slice}) -> {dst}", other_gnb,
                              [_gpdu(h, other_gnb, upf.name, s.ul_teid,
                                     _inner(str(s.address), h.ip[dst], proto, port, P.token(i)))],
                              [dst], f"GTP-U TEID {s.ul_teid:#x} of a session at {s.gnb}, from {other_gnb}"))
        # another session's TEID around a packet of this session (same gNB: only the inner source differs)
        other = next(((x, t) for x, t in mine if x.ue != s.ue and x.gnb == s.gnb), None)
        if other:
            x, (xdst, xproto, xport) = other
            i = ids()
            out.append(Attack(i, "gtpu-teid", f"{s.gnb} -> {upf.name}: {s.ue}'s packet ({s.address}) inside "
                                              f"{x.ue}'s session TEID {x.ul_teid:#x} -> {xdst}", s.gnb,
                              [_gpdu(h, s.gnb, upf.name, x.ul_teid,
                                     _inner(str(s.address), h.ip[xdst], xproto, xport, P.token(i)))],
                              [xdst], f"GTP-U TEID {x.ul_teid:#x} ({x.ue}), inner source {s.address} ({s.ue})"))
        i = ids()
        out.append(Attack(i, "gtpu-non-gnb", f"{s.ue} (a UE, not a gNB) -> {upf.name}: a valid G-PDU of its "
                                             f"own session -> {dst}", s.ue,
                          [_gpdu(h, s.ue, upf.name, s.ul_teid, _inner(str(s.address), h.ip[dst], proto, port,
                                                                       P.token(i)))],
                          [dst, upf.name], f"GTP-U TEID {s.ul_teid:#x} from {h.ip[s.ue]} (a UE's own link) to "
                                           f"{h.ip[upf.name]}:{gtpu.PORT}", tunnelled_at=[upf.name]))
    out += _through_the_upf(plan, sessions, h, ids)
    for s in sessions:
        victim = next(((x, t) for x in sessions if x.ue != s.ue and (t := _target(pol, x, h)) is not None), None)
        if victim is None or s.ue not in h.via:
            continue
        x, (dst, proto, port) = victim
        i = ids()
        out.append(Attack(i, "spoof-inner", f"{s.ue} sends as {x.ue} ({x.address}) through its own session "
                                            f"{s.tun} -> {dst} {proto}/{port}", s.ue,
                          [_inner(str(x.address), h.ip[dst], proto, port, P.token(i))],
                          [dst], f"{proto} {x.address} -> {h.ip[dst]}:{port} written to {s.tun}", via=s.tun))
        break
    return out
