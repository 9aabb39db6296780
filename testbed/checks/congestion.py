"""Congestion drills: bounded cross-traffic on a path, and what it does to the flows sharing that path.

A `congestion` fault sends real iperf3 TCP from `from` to `to`'s iperf3 server
at `rate` (iperf3 -b) for its duration, at most 1 Gbit/s for at most a minute
(the file format bounds both), in whatever slice grants `from` the iperf
service: so the cross-traffic is metered and marked like any of that slice's
traffic. The flows watched are the intended flows whose path shares a link
with it. Their round trips while it runs are set beside those just before,
and the slicing must keep every flow of another slice within its own budget
(a round trip within twice the slice's one-way budget) and its loss within
the drills' control share. Flows of the congesting slice itself, and the
sender's own, are shown but not judged: they share its meter, or its queue,
by design.
"""
from __future__ import annotations

import json
import math
import subprocess
from typing import Any

from testbed.topology.model import Fault, Topology
from testbed.workloads.slo import percentile
from testbed.workloads.targets import resolve, service_port

SERVICE = "iperf"
RAMP_S = 0.5  # the first moments of the cross-traffic (TCP slow start) are not judged
STOP_TIMEOUT_S = 15.0


def cross_target(topo: Topology, f: Fault) -> str | None:
    """The node the cross-traffic goes to: `to` itself, or the first host offering it as a service."""
    return next((n for n in resolve(topo, f.dst or "") if service_port(topo, n, SERVICE) is not None), None)


class CrossTraffic:
    """iperf3 from `f.src` to the target's iperf3 server for `seconds`, then its JSON report."""

    def __init__(self, tb: Any, f: Fault, seconds: float):
        self.dst = cross_target(tb.topo, f)
        if self.dst is None:
            raise RuntimeError(f"{f.dst!r} offers no iperf service to send cross-traffic to")
        port = service_port(tb.topo, self.dst, SERVICE)
        self.argv = ["iperf3", "-c", tb.node(self.dst).ip, "-p", str(port), "-b", str(f.rate),
                     "-t", str(max(1, math.ceil(seconds))), "-J"]
        self.proc = tb.node(f.src).popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         stdin=subprocess.DEVNULL)

    def stop(self) -> dict[str, Any]:
        """Wait for it to end by itself (its -t); what the sender and the receiver counted."""
        try:
            out, err = self.proc.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        try:
            doc = json.loads(out)
        except json.JSONDecodeError:
            return {"dst": self.dst, "error": (err or out).strip()[-300:] or "iperf3 printed nothing"}
        end = doc.get("end", {})
        return {"dst": self.dst, "error": doc.get("error"),
                "sent_bps": round(end.get("sum_sent", {}).get("bits_per_second", 0.0)),
                "received_bps": round(end.get("sum_received", {}).get("bits_per_second", 0.0)),
                "retransmits": end.get("sum_sent", {}).get("retransmits")}


def _p95(values: list[float]) -> float | None:
    p = percentile(values, 95)
    return None if p is None else round(p, 2)


def flow_effect(rtts: list[tuple[float, float | None]], t_inject: float, t_restore: float) -> dict[str, Any]:
    """One watched flow's round trips (time sent, ms or None: lost) before and during the cross-traffic."""
    before = [r for t, r in rtts if t_inject - 2.0 <= t < t_inject]
    during = [r for t, r in rtts if t_inject + RAMP_S <= t < t_restore]
    got_b, got_d = [r for r in before if r is not None], [r for r in during if r is not None]
    return {"rtt_p95_before_ms": _p95(got_b), "rtt_p95_during_ms": _p95(got_d),
            "sent": len(during), "lost": len(during) - len(got_d)}


def judge(rows: list[dict[str, Any]], topo: Topology, cross_slice: str | None, sender: str | None,
          max_loss: float) -> tuple[list[str], dict[str, Any]]:
    """Problems of the watched flows of slices other than the congesting one (the sender's own flows
    queue behind its load: not judged either), and summary metrics."""
    budgets = {s.name: s.budget_ms for s in topo.slices}
    bad = []
    for r in rows:
        budget = budgets.get(r.get("slice") or "")
        r["rtt_limit_ms"] = 2 * budget if budget is not None else None
        r["judged"] = r.get("slice") != cross_slice and r["src"] != sender
        if not r["judged"]:
            continue
        who = f"{r['src']} -> {r['dst']} ({r.get('slice')})"
        if r["lost"] > max_loss * max(1, r["sent"]):
            bad.append(f"{who} lost {r['lost']}/{r['sent']}")
        if r["rtt_limit_ms"] is not None and (r["rtt_p95_during_ms"] or 0) > r["rtt_limit_ms"]:
            bad.append(f"{who} round trip p95 {r['rtt_p95_during_ms']} ms > {r['rtt_limit_ms']:g} ms")
    judged = [r for r in rows if r["judged"]]
    worse = [r["rtt_p95_during_ms"] - r["rtt_p95_before_ms"] for r in judged
             if r["rtt_p95_during_ms"] is not None and r["rtt_p95_before_ms"] is not None]
    return bad, {"flows": rows, "other_slice_flows": len(judged),
                 "rtt_p95_added_ms_max": round(max(worse), 2) if worse else None}
