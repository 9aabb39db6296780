"""The 5G path inside the built network: the nodes the plan adds, the flows it needs, sessions as addresses.

Pure functions between the RAN plan and the slice policy; the engine calls them
when it builds a run, the prober and `testbed flows` when they read one.

- `prepare(topo, seed)`: the topology the engine builds. When the file has
  gNBs and UEs (and `ran.backend` is not "off"), the plan's core and any
  implicit UPF become nodes of the topology, each with the plan's address and a
  link to the anchor switch (the one the central UPF hangs off, else the data
  centre's first switch). Recomputing the plan on the result gives the same
  plan, so every later reader (the prober, `testbed ran status`, a live slice
  change) derives it from the run's topology alone.
- `run_policy(topo, plan)`: the node-level policy of the run: the file's slices
  plus the infrastructure flows of the 5G path (UE -> its gNB RLS, gNB -> core
  NGAP, gNB <-> its UPFs GTP-U, core -> UPF N4 and its PFCP heartbeats; and for
  a UE's fallback gNBs, the UE -> that gNB's RLS and that gNB <-> the UE's
  sessions' UPFs, and for a session on a MEC UPF, its gNBs <-> the central UPF
  it falls back to, all granted from the start so that a re-attach or a
  fallback needs no grant), and the UPFs (the fallback ones too) as neighbours
  of the servers their sessions reach (ARP: no grant, but the servers' next hop
  back to the sessions). The prober's matrix reads this.
- `session_policy(policy, plan)`: what the switches enforce. A UE's node
  address carries only its radio link; what its slices grant it is granted to
  its PDU sessions instead, each a *session host* `UE/uesimtunN` whose address
  is the session's and which sits behind its UPF's switch port (the UPF puts
  the session's packets on N6 with that source address). So a slice's rules
  hold on N6 exactly as they held on the UE's own port before.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from testbed import kinds, services
from testbed.ran.plan import RanPlan, Session, ran_plan
from testbed.slicing.policy import INFRA, Grant, Policy, compile_policy
from testbed.topology.model import Link, Node, Topology

DC_SITE = "datacentre"


def enabled(topo: Topology) -> bool:
    """Does this topology run a 5G path: gNBs and UEs, and a backend that is not "off"?"""
    roles = {kinds.get(n.kind).ran_role for n in topo.nodes}
    return topo.ran.backend != "off" and {"gnb", "ue"} <= roles


def prepare(topo: Topology, seed: str | None = None) -> tuple[Topology, RanPlan | None]:
    """(the topology to build, its RAN plan), or (topo, None) when it has no 5G path."""
    if not enabled(topo):
        return topo, None
    plan = ran_plan(topo, seed=seed)
    anchor = anchor_switch(topo, plan)
    site = next((s.name for s in topo.sites if s.type == DC_SITE), None)
    added: list[Node] = []
    if plan.core.name not in {n.name for n in topo.nodes}:
        added.append(Node(name=plan.core.name, kind="core", site=site, ip=str(plan.core.address),
                          description="5G core (AMF/SMF), added by the RAN plan"))
    added += [Node(name=u.name, kind="upf", site=site, ip=str(u.address),
                   description="central UPF, added by the RAN plan") for u in plan.upfs if u.implicit]
    if not added:
        return topo, plan
    if anchor is None:
        raise ValueError("the 5G core needs a switch to attach to; the topology has none")
    expanded = topo.model_copy(update={"nodes": [*topo.nodes, *added],
                                       "links": [*topo.links, *(Link(endpoints=(n.name, anchor)) for n in added)]})
    return expanded, ran_plan(expanded, seed=seed)


def summary(topo: Topology) -> tuple[str, list[str]]:
    """`testbed validate`'s account of the file's 5G part (UEs, sessions, gNBs, UPFs as planned, implicit
    bindings included), and warnings: a MEC UPF that serves no session is almost always a placement the
    file did not mean (a tester's UPF in a site without a gNB carried nothing, and nothing said so)."""
    if not enabled(topo):
        return "no 5G path", []
    plan = ran_plan(topo)
    served = {s.upf for s in plan.sessions}
    def where(sites: tuple[str, ...]) -> str:
        return ", ".join(sites) if len(sites) <= 3 else f"{len(sites)} sites"

    upfs = ", ".join(f"{u.name} ({'MEC for ' + where(u.sites) if u.sites else u.role})" for u in plan.upfs)
    text = (f"{len(plan.subscribers)} UE(s) with {len(plan.sessions)} PDU session(s), {len(plan.gnbs)} gNB(s), "
            f"UPFs {upfs}")
    warnings = [f"MEC UPF {u.name} serves no PDU session: no UE of its slices "
                f"({', '.join(u.slices) or 'all'}) attaches in its sites ({', '.join(u.sites) or 'none'}); place it "
                f"in a site with a gNB, nearer to the gNBs than the central UPF, or bind it with ran.upfs"
                for u in plan.upfs if u.role == "mec" and u.name not in served]
    return text, warnings


def anchor_switch(topo: Topology, plan: RanPlan) -> str | None:
    """Where added nodes attach: the central UPF's switch, else the data centre's first, else the first switch."""
    central = [u.name for u in plan.upfs if u.role == "central" and not u.implicit]
    for link in topo.links:
        a, b = link.endpoints
        for host, other in ((a, b), (b, a)):
            if host in central and kinds.is_switch(topo.node(other).kind):
                return other
    dc = {s.name for s in topo.sites if s.type == DC_SITE}
    switches = [n for n in topo.nodes if kinds.is_switch(n.kind)]
    return next((n.name for n in switches if n.site in dc), switches[0].name if switches else None)


def _grant(src: str, dst: str, service: str) -> Grant:
    spec = services.spec(service)
    assert spec is not None
    return Grant(INFRA, src, dst, spec.proto, spec.port, service)


def infra_grants(plan: RanPlan) -> list[Grant]:
    """The flows the 5G path needs to exist, outside every slice."""
    out = [_grant(sub.name, gnb, "rls") for sub in plan.subscribers for gnb in sub.cells]
    out += [_grant(g.name, plan.core.name, "ngap") for g in plan.gnbs]
    out += [_grant(plan.core.name, u.name, svc) for u in plan.upfs for svc in ("pfcp", "pfcp-hb")]
    cells = {sub.name: sub.cells for sub in plan.subscribers}
    for gnb, upf in dict.fromkeys((g, u) for s in plan.sessions for g in cells[s.ue] for u in session_upfs(s)):
        out += [_grant(gnb, upf, "gtpu"), _grant(upf, gnb, "gtpu")]
    return out


def session_upfs(s: Session) -> tuple[str, ...]:
    """The UPFs a session may be anchored at: its own, then the central one it falls back to."""
    return (s.upf, s.fallback_upf) if s.fallback_upf else (s.upf,)


def run_policy(topo: Topology, plan: RanPlan | None, extra_members: dict[str, list[str]] | None = None,
               revoked: dict[str, list[str]] | None = None) -> Policy:
    """The run's node-level policy: the file's slices (with run-time changes) plus the 5G path's flows."""
    pol = compile_policy(topo, extra_members, revoked)
    if plan is None:
        return pol
    session = first_sessions(plan)
    for g in pol.grants:
        s = session.get((g.src, g.slice))
        for upf in session_upfs(s) if s is not None else ():
            if (upf, g.dst) not in pol.neighbours:
                pol.neighbours.append((upf, g.dst))
    have = set(pol.grants)
    for g in infra_grants(plan):
        if g not in have:
            have.add(g)
            pol.grants.append(g)
            if g.src not in pol.members[INFRA]:
                pol.members[INFRA].append(g.src)
    return pol


def first_sessions(plan: RanPlan) -> dict[tuple[str, str], Session]:
    """(UE, slice) -> the UE's first PDU session in that slice: the one its slice grants go to."""
    out: dict[tuple[str, str], Session] = {}
    for s in plan.sessions:
        out.setdefault((s.ue, s.slice), s)
    return out


def session_host(s: Session) -> str:
    """The name a session goes by in the switches' rules and `testbed flows`: UE/uesimtunN."""
    return f"{s.ue}/{s.tun}"


def session_policy(policy: Policy, plan: RanPlan) -> tuple[Policy, dict[str, tuple[str, str]]]:
    """(the policy the switches enforce, session host -> (its UPF, its address)).

    A UE's slice grants move to the session of that slice (none: the UE has no
    session there, so nothing is granted); its infrastructure grants stay.
    """
    session = first_sessions(plan)
    subscribers = {sub.name for sub in plan.subscribers}
    out = Policy(members=dict(policy.members))
    aliases: dict[str, tuple[str, str]] = {}
    for g in policy.grants:
        if g.slice == INFRA or g.src not in subscribers:
            out.grants.append(g)
            continue
        s = session.get((g.src, g.slice))
        if s is not None:
            aliases[session_host(s)] = (s.upf, str(s.address))
            out.grants.append(replace(g, src=session_host(s)))
    return out, aliases


def relocated(plan: RanPlan, moves: Mapping[str, str]) -> RanPlan:
    """The plan with each session named in `moves` (session host `UE/uesimtunN` -> UPF) anchored at that UPF.

    Where the core moved it: a session on a lost MEC UPF goes to its central
    fallback, and back when the MEC UPF answers again (testbed.ran.amf). Only a
    move to the session's own UPF or its fallback is taken; anything else is a
    KeyError (a moves file from another plan).
    """
    if not moves:
        return plan
    subs = []
    for sub in plan.subscribers:
        out = []
        for s in sub.sessions:
            to = moves.get(session_host(s), s.upf)
            if to not in session_upfs(s):
                raise KeyError(f"{session_host(s)} cannot be anchored at {to!r}: its UPFs are {session_upfs(s)}")
            out.append(s if to == s.upf else replace(s, upf=to, fallback_upf=s.upf))  # same grants either way
        subs.append(replace(sub, sessions=tuple(out)))
    return replace(plan, subscribers=tuple(subs))


def enforced_policy(topo: Topology, plan: RanPlan | None, extra_members: dict[str, list[str]] | None = None,
                    revoked: dict[str, list[str]] | None = None) -> tuple[Policy, dict[str, tuple[str, str]]]:
    """What the switches hold for this run: `session_policy` of `run_policy` (no aliases without a RAN)."""
    pol = run_policy(topo, plan, extra_members, revoked)
    return session_policy(pol, plan) if plan is not None else (pol, {})


__all__ = ["anchor_switch", "enabled", "enforced_policy", "infra_grants", "prepare", "relocated", "run_policy",
           "session_host", "session_policy", "session_upfs"]
