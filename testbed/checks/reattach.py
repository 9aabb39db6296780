"""UEs re-attaching through another gNB during a drill that loses their gNB: who should, who did, how fast.

A `node-down` on a gNB cuts its UEs' radio links. A UE that the plan gives a
fallback gNB (another gNB of its site, or `ran.ues[].gnbs`) notices the silence
(its heartbeats go unanswered for its link timeout), registers through the
next gNB and re-establishes its PDU sessions there, with the same addresses,
UPF and TEIDs (testbed.ran.ue). Its flows then come back while the gNB is
still down, instead of at the restore.

This module knows which UEs must do so for a fault (`expected`), reads what
they did from their status files (`Watch`: a snapshot before the injection,
the attachments and session counters after), and judges it together with the
flows' pings: every such UE re-registered through one of its fallbacks before
the restore, and each of its watched flows was back before the restore.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from testbed.engine.ran import read_status, status_path
from testbed.topology.model import Fault


def expected(tb: Any, fault: Fault) -> dict[str, tuple[str, ...]]:
    """UE -> the fallback gNBs it may re-attach through, for every UE whose gNB this fault loses."""
    plan = getattr(tb, "ran", None)
    if plan is None or fault.type != "node-down" or fault.target not in {g.name for g in plan.gnbs}:
        return {}
    return {sub.name: tuple(g for g in sub.fallback_gnbs if g != fault.target)
            for sub in plan.subscribers if sub.gnb == fault.target
            and any(g != fault.target for g in sub.fallback_gnbs)}


def _counters(st: dict[str, Any]) -> dict[str, int]:
    c = st.get("counters", {})
    return {k: int(c.get(k, 0)) for k in ("sessions_lost", "sessions_reestablished", "link_losses")}


@dataclass
class Watch:
    """The UEs a drill expects to re-attach, and what their status files said before the fault."""

    ues: dict[str, tuple[str, ...]]
    before: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start(self, tb: Any) -> None:
        for ue in self.ues:
            st = read_status(status_path(tb, ue))
            self.before[ue] = {"attaches": len(st.get("attaches", [])), **_counters(st)}

    def result(self, tb: Any, t_inject: float, t_restore: float) -> list[dict[str, Any]]:
        """Per UE: the gNB it came back through, when (from the injection), and the sessions lost and back."""
        out = []
        for ue, fallbacks in self.ues.items():
            st = read_status(status_path(tb, ue))
            b = self.before.get(ue, {})
            new = st.get("attaches", [])[b.get("attaches", 0):]
            first = next((a for a in new if a.get("gnb") in fallbacks and a.get("registered_at", 0) >= t_inject),
                         None)
            c = _counters(st)
            row: dict[str, Any] = {"ue": ue, "fallbacks": list(fallbacks), "gnb": first.get("gnb") if first else None,
                                   "now_on": st.get("cell"),
                                   "sessions_lost": c["sessions_lost"] - b.get("sessions_lost", 0),
                                   "sessions_reestablished": c["sessions_reestablished"]
                                   - b.get("sessions_reestablished", 0)}
            if first:
                row["registered_s"] = round(first["registered_at"] - t_inject, 2)
                at = first.get("sessions_active_at")
                row["sessions_back_s"] = round(at - t_inject, 2) if at else None
            row["before_restore"] = bool(first and row.get("sessions_back_s") is not None
                                         and first["sessions_active_at"] <= t_restore)
            out.append(row)
        return out


def judge(rows: list[dict[str, Any]], flows: list[dict[str, Any]], t_restore_s: float,
          lost: str) -> tuple[list[str], dict]:
    """(problems, metrics): each UE re-attached before the restore, and its flows were back before it too.

    `flows` are the drill's affected rows (testbed.checks.pings.measure plus src/dst); a flow's `back_s`
    is from the injection to its first answered echo after the outage. A flow to the `lost` gNB itself
    (the UE's radio link to it) has nowhere else to go and is not judged here.
    """
    ues = {r["ue"]: r for r in rows}
    bad = [f"{r['ue']} did not re-attach through {'/'.join(r['fallbacks'])} before the restore" for r in rows
           if not r["before_restore"]]
    mine = [f for f in flows if f["src"] in ues and lost not in (f["src"], f["dst"])]
    late = [f"{f['src']} -> {f['dst']}" for f in mine if f.get("back_s") is None or f["back_s"] >= t_restore_s]
    if late:
        bad.append(f"flows not back through the other gNB before the restore: {', '.join(late[:5])}")
    back = [f["back_s"] for f in mine if f.get("back_s") is not None]
    if not mine:
        bad.append("no flow of a re-attaching UE was watched: nothing measured")
    metrics = {"ues": rows, "flows": len(mine), "flows_back_s_max": max(back, default=None),
               "sessions_lost": sum(r["sessions_lost"] for r in rows),
               "sessions_reestablished": sum(r["sessions_reestablished"] for r in rows)}
    return bad, metrics


def line(m: dict[str, Any]) -> str:
    """The drill's sentence about it."""
    rows = m["ues"]
    gnbs = sorted({r["gnb"] for r in rows if r["gnb"]})
    reg = [r["registered_s"] for r in rows if r.get("registered_s") is not None]
    return (f"{len(rows)} UE(s) re-attached through {', '.join(gnbs) or 'no other gNB'} "
            f"(registered {max(reg, default=0):g} s after the loss), {m['sessions_reestablished']}/"
            f"{m['sessions_lost']} sessions re-established, flows back {m['flows_back_s_max']} s after the loss")
