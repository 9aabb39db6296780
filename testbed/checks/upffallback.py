"""Sessions falling back from a lost MEC UPF to the central one during a drill: who should, who did, how fast.

A `node-down` on a MEC UPF cuts the sessions anchored there. Each session the
plan gives a `fallback_upf` (the central UPF the same selection picks) must be
moved by the core (testbed.ran.amf: the PFCP heartbeats go unanswered, N4 to
the central UPF, an NGAP modify to the gNB), the switches and servers must
follow (testbed.engine.relocate, a `Follower` for the drills' whole phase), and
the UE's flows must come back while the MEC UPF is still down. When it answers
again the sessions go home the same way.

`expected` names the sessions for a fault; `result` reads the core's status
(each session's moves, the heartbeat loss) and the follower's applies; `judge`
adds the flows' pings: every such session moved before the restore, and each of
its UE's watched flows was back before the restore.
"""
from __future__ import annotations

from typing import Any

from testbed.engine.ran import read_status, status_path
from testbed.engine.relocate import Follower
from testbed.ran.network import session_host
from testbed.topology.model import Fault


def expected(tb: Any, fault: Fault) -> dict[str, str]:
    """Session host -> the UPF it must fall back to, for every session anchored at the UPF this fault loses."""
    plan = getattr(tb, "ran", None)
    if plan is None or fault.type != "node-down" or fault.target not in {u.name for u in plan.upfs}:
        return {}
    return {session_host(s): s.fallback_upf for s in plan.sessions
            if s.upf == fault.target and s.fallback_upf and s.fallback_upf != fault.target}


def follower(tb: Any) -> Follower:
    """The thread that makes the switches and servers follow the core's moves, started."""
    addresses = {n: str(i.ip) for n, i in tb.layout.ips.items()}
    return Follower(tb.manifest, tb.topo, tb.ran, lambda node, argv: tb.node(node).run(argv, timeout=20),
                    addresses).start()


def result(tb: Any, sessions: dict[str, str], lost: str, t_inject: float,
           applied: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per session: when the core moved it to the fallback and back (from the injection), when the gNB
    confirmed, and when the switches and servers followed."""
    core = read_status(status_path(tb, tb.ran.core.name))
    live = {f"{ue.get('name')}/{s.get('tun')}": s for ue in core.get("ues", []) for s in ue.get("sessions", [])}
    hb = core.get("n4", {}).get("heartbeats", {})
    out = []
    for host, to in sessions.items():
        s = live.get(host, {})
        moves = [mv for mv in s.get("moves", []) if mv.get("at", 0) >= t_inject]
        away = next((mv for mv in moves if mv.get("from") == lost and mv.get("to") == to), None)
        home = next((mv for mv in moves if mv.get("to") == lost), None)
        followed = next((a for a in applied if host in a.get("moved", [])), None)
        back = next((a for a in applied if host in a.get("back", [])), None)
        rel = lambda t: round(t - t_inject, 2) if t else None  # noqa: E731
        out.append({"session": host, "fallback": to, "now_on": s.get("upf"),
                    "upf_lost_s": rel(hb.get("lost_at", {}).get(lost)),
                    "moved_s": rel(away and away["at"]), "gnb_confirmed_s": rel(away and away.get("gnb_confirmed_at")),
                    "network_followed_s": rel(followed and followed["done_at"]),
                    "moved_home_s": rel(home and home["at"]), "network_home_s": rel(back and back["done_at"])})
    return out


def judge(rows: list[dict[str, Any]], flows: list[dict[str, Any]], t_restore_s: float,
          errors: list[str]) -> tuple[list[str], dict[str, Any]]:
    """(problems, metrics): every session moved and was followed before the restore, and its UE's flows
    were back before the restore too."""
    ues = {r["session"].split("/")[0] for r in rows}
    bad = [f"{r['session']} did not fall back to {r['fallback']} before the restore" for r in rows
           if r["network_followed_s"] is None or r["network_followed_s"] >= t_restore_s]
    mine = [f for f in flows if f["src"] in ues]
    late = [f"{f['src']} -> {f['dst']}" for f in mine if f.get("back_s") is None or f["back_s"] >= t_restore_s]
    if late:
        bad.append(f"flows not back through the central UPF before the restore: {', '.join(late[:5])}")
    if not mine:
        bad.append("no flow of a falling-back session was watched: nothing measured")
    bad += [f"following the core: {e}" for e in errors[:2]]
    back = [f["back_s"] for f in mine if f.get("back_s") is not None]
    pick = lambda k: max((r[k] for r in rows if r[k] is not None), default=None)  # noqa: E731
    metrics = {"sessions": rows, "flows": len(mine), "flows_back_s_max": max(back, default=None),
               "upf_lost_s": pick("upf_lost_s"), "moved_s_max": pick("moved_s"),
               "network_followed_s_max": pick("network_followed_s"), "moved_home_s_max": pick("moved_home_s")}
    return bad, metrics


def line(m: dict[str, Any]) -> str:
    """The drill's sentence about it."""
    rows = m["sessions"]
    to = sorted({r["fallback"] for r in rows})
    return (f"{len(rows)} session(s) fell back to {', '.join(to)}: UPF declared lost {m['upf_lost_s']} s after "
            f"the loss, sessions moved by {m['moved_s_max']} s, switches and routes followed by "
            f"{m['network_followed_s_max']} s, flows back {m['flows_back_s_max']} s after the loss; "
            f"home again {m['moved_home_s_max']} s after the loss")
