"""Desktop sessions through a drill: a lost desktop host's sessions move to a spare, and the time is measured.

When a drill loses a host that the file's session workloads (`type: vdi`) give
sessions to, and a spare stands in for it (`spare: true` on a host offering the
same service), the drill runs those sessions right through the fault: each
source runs the real desktop client (traffic.vdi_client, TLS to the host with
its certificate checked) with the spares as its failover list, as a connection
broker hands one out. A host that sends nothing for DEAD_AFTER_S (it pushes a
screen update every 100 ms) is lost; the client then opens a new session on the
spare, over the path the slice policy already grants every member to every host
offering the service. So nothing in the network changes for the failover and
no isolation rule is touched: the sessions reach the spare because the spare is
in the pool, and they move on the wire (a new TLS session to another address).

Measured per session, from the moment of the kill (all times on the host's
clock, which the nodes share): when the loss was detected, when the session was
back (the spare's welcome), when it was back within its SLO (the first input
from which a whole SLO_WINDOW_S of inputs was answered within the workload's
`latency_p95`), and the inputs lost with the host.
"""
from __future__ import annotations

import subprocess
import time
from typing import Any

from testbed.topology.faultcheck import spares_for
from testbed.topology.model import Fault, Topology, Workload
from testbed.workloads import agents, params_of
from testbed.workloads.slo import percentile
from testbed.workloads.targets import assign, service_port

SERVICE = "vdi"
DEAD_AFTER_S = 1.0  # the client's liveness timeout: a desktop host pushes an update every 100 ms
SLO_WINDOW_S = 1.0  # back within SLO: a whole window of inputs answered within the latency SLO
DEFAULT_SLO_MS = 250.0  # no latency_p95 in the workload: remote-desktop guidance for task workers (DOMAIN.md)
STOP_TIMEOUT_S = 30.0


def sessions_on(topo: Topology, host: str) -> list[tuple[Workload, str]]:
    """(workload, source) of every desktop session the file's vdi workloads put on `host`."""
    return [(w, src) for w in topo.workloads if w.type == "vdi"
            for src, dst in assign(topo, w.src, w.dst) if dst == host]


def slo_ms(w: Workload) -> float:
    return float(w.slo.latency_p95) if w.slo.latency_p95 is not None else DEFAULT_SLO_MS


class DesktopWatch:
    """The desktop clients of the sessions on `host`, running (bounded by `limit_s`) until stopped."""

    def __init__(self, tb: Any, host: str, spares: list[str], sessions: list[tuple[Workload, str]], limit_s: float):
        self.host, self.spares = host, spares
        ca = tb.manifest.dir / "pki" / "ca.crt"
        port = service_port(tb.topo, host, SERVICE)
        failover = [a for s in spares for a in ("--failover", f"{s}={tb.node(s).ip}")]
        self.runs = []
        for w, src in sessions:
            p = params_of(w)
            argv = agents.agent("traffic.vdi_client", "--host", host, "--addr", tb.node(host).ip, "--port", port,
                                "--ca", ca, "--mode", p.mode, "--sessions", p.sessions,
                                "--input-interval", p.input_interval / 1000, "--duration", round(limit_s, 1),
                                "--dead-after", DEAD_AFTER_S, "--timeline", *failover)
            proc = tb.node(src).popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      stdin=subprocess.DEVNULL)
            self.runs.append((w, src, proc))

    def stop(self, t_kill: float) -> list[dict[str, Any]]:
        """Wait for the clients (they end by their duration); one row per session, measured from `t_kill`."""
        rows = []
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for w, src, proc in self.runs:
            try:
                out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            doc = agents.last_json(out)
            if doc is None:
                tail = " | ".join((err or out).strip().splitlines()[-2:]) or "no output"
                rows.append({"workload": w.name, "src": src, "error": f"desktop client: {tail}"})
                continue
            for tl in doc.get("timeline", []):
                rows.append({"workload": w.name, "src": src, "session": tl.get("session"),
                             **failover_metrics(tl, self.host, t_kill, slo_ms(w))})
        return rows


def watch(tb: Any, fault: Fault, limit_s: float) -> DesktopWatch | None:
    """The desktop sessions a node-down drill must carry over to a spare; None when it has none to watch."""
    if fault.type != "node-down" or not fault.target:
        return None
    spares = [s for s in spares_for(tb.topo, fault.target) if service_port(tb.topo, s, SERVICE) is not None]
    sessions = sessions_on(tb.topo, fault.target)
    if not spares or not sessions:
        return None
    return DesktopWatch(tb, fault.target, spares, sessions, limit_s)


def failover_metrics(tl: dict[str, Any], host: str, t_kill: float, slo: float) -> dict[str, Any]:
    """One session's timeline (traffic.vdi_client --timeline) read against the kill at `t_kill`."""
    events = sorted(tl.get("events", []))
    inputs = sorted(tl.get("inputs", []))
    on_host = any(e[1] == "connected" and e[2] == host and e[0] < t_kill for e in events)
    lost = next((e for e in events if e[1] == "lost" and e[2] == host and e[0] >= t_kill), None)
    back = next((e for e in events if lost and e[1] == "connected" and e[0] >= lost[0] and e[2] != host), None)
    row: dict[str, Any] = {"host": host, "on_host_at_kill": on_host, "moved_to": back[2] if back else None,
                           "detected_s": round(lost[0] - t_kill, 2) if lost else None,
                           "back_s": round(back[0] - t_kill, 2) if back else None, "slo_ms": slo,
                           "inputs_lost": sum(1 for t, lat, _h in inputs if lat is None and t >= t_kill - 2 * DEAD_AFTER_S),
                           "inputs": len(inputs)}
    row["slo_back_s"] = None
    if back:
        after = [(t, lat) for t, lat, h in inputs if t >= back[0] and h == back[2]]
        for i, (t, _lat) in enumerate(after):
            window = [lat for u, lat in after[i:] if u < t + SLO_WINDOW_S]
            if after[-1][0] < t + SLO_WINDOW_S:
                break  # not a whole window left to judge
            if window and None not in window and percentile(window, 95) <= slo:
                row["slo_back_s"] = round(t - t_kill, 2)
                break
    return row


def verdict(rows: list[dict[str, Any]], restore_after_s: float) -> tuple[bool, str, dict[str, Any]]:
    """(ok, one line, metrics) of the sessions a drill carried: every one back within SLO on a spare
    before the lost host was restored."""
    bad = []
    for r in rows:
        who = f"{r['src']} session {r.get('session', '?')}"
        if r.get("error"):
            bad.append(f"{who}: {r['error']}")
        elif not r["on_host_at_kill"]:
            bad.append(f"{who}: not on {r['host']} when it was lost")
        elif r["slo_back_s"] is None or r["slo_back_s"] > restore_after_s:
            bad.append(f"{who}: not back within SLO on a spare while {r['host']} was down"
                       + (f" (reconnected to {r['moved_to']} after {r['back_s']} s)" if r.get("back_s") else ""))
    ok_rows = [r for r in rows if not r.get("error")]
    metrics = {"sessions": rows,
               "failover_s_max": max((r["back_s"] for r in ok_rows if r["back_s"] is not None), default=None),
               "slo_back_s_max": max((r["slo_back_s"] for r in ok_rows if r["slo_back_s"] is not None), default=None),
               "sessions_lost": len(bad), "inputs_lost": sum(r.get("inputs_lost", 0) for r in ok_rows),
               "moved_to": sorted({r["moved_to"] for r in ok_rows if r.get("moved_to")})}
    if bad:
        return False, "desktop sessions did not fail over: " + "; ".join(bad[:3]), metrics
    return True, (f"{len(rows)} desktop session(s) moved to {', '.join(metrics['moved_to'])}: back "
                  f"{metrics['failover_s_max']} s after the kill, within SLO after {metrics['slo_back_s_max']} s "
                  f"({metrics['inputs_lost']} inputs lost)"), metrics
