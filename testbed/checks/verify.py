"""`testbed verify` as a check: prove isolation over the installed tables, then replay every finding on the wire.

The proof (testbed.verify) covers every header for every ordered pair of host
ports; a finding is a formal claim about one header. Replaying it through the
prober's own agents (a sender in the node at the source port, a capture in the
nodes at the destination port) confirms or refutes it with a real packet:
a leak is confirmed when its token arrives, a false block when the granted
packet does not. A leak that needs a tracked connection is preceded by a packet
that opens one (the proof says which).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from testbed.checks.result import CheckResult
from testbed.engine.flowtables import read_tables, run_plan
from testbed.events import Emitter, EventSink
from testbed.probe.agents import Captures, arrival_index, host_interfaces, send_all
from testbed.probe.attacks import Ids
from testbed.verify.compare import Finding
from testbed.verify.frames import frame
from testbed.verify.network import Port
from testbed.verify.prove import Proof, prove
from traffic.packets import token

MAX_REPLAYS = 40  # findings replayed per run (allow-all has one per pair: the first ones make the point)
MAX_LISTED = 200  # findings kept in the report
SETTLE_S = 1.0


@dataclass
class Verification:
    proof: Proof | None
    replayed: int = 0
    confirmed: int = 0
    refuted: int = 0
    error: str = ""
    replay_s: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return self.proof.comparison.findings if self.proof else []

    def summary(self) -> dict:
        out = self.proof.summary() if self.proof else {}
        out.update(replayed=self.replayed, confirmed=self.confirmed, refuted=self.refuted,
                   replay_s=round(self.replay_s, 2), findings=[f.as_dict() for f in self.findings[:MAX_LISTED]],
                   findings_listed=min(len(self.findings), MAX_LISTED))
        if self.error:
            out["error"] = self.error
        return out


def _nodes_at(proof: Proof, ifaces: dict[str, str], port: Port) -> list[str]:
    """Nodes (not PDU-session aliases) whose interface is that switch port."""
    return [n for n, rec in sorted(proof.plan_hosts.items())
            if (str(rec["dpid"]), int(rec["port"])) == port and "/" not in n and n in ifaces]


def replay(tb, proof: Proof, findings: list[Finding], emit: Emitter) -> tuple[int, int, int]:
    """Send each finding's header (after its opener) and watch the far end; sets f.replay. (replayed, confirmed, refuted)"""
    ifaces = host_interfaces(tb)
    ids = Ids("v")
    todo: list[tuple[Finding, str, list[str], str, tuple | None]] = []
    for f in findings:
        src, dst = _nodes_at(proof, ifaces, f.src_port), _nodes_at(proof, ifaces, f.dst_port)
        if not src or not dst:
            f.replay = "not replayed"
            f.replay_detail = "no node at " + ("the source port" if not src else "the destination port")
            continue
        if len(todo) >= MAX_REPLAYS:
            f.replay = "not replayed"
            f.replay_detail = f"only the first {MAX_REPLAYS} findings are replayed"
            continue
        opener = None
        if f.opener is not None:
            onodes = _nodes_at(proof, ifaces, f.opener["port"])
            if onodes:
                opener = (onodes[0], frame(f.opener["header"], token(ids())))
        todo.append((f, src[0], dst, ids(), opener))
    if not todo:
        return 0, 0, 0
    caps = Captures(tb, {}, max_seconds=120.0, hosts={n for _, _, dst, _, _ in todo for n in dst})
    caps.start()
    try:
        openers: dict[str, dict] = {}
        for _, _, _, _, op in todo:
            if op is not None:
                openers.setdefault(op[0], {"frames": [], "rounds": 1})["frames"].append([ifaces[op[0]], op[1].hex()])
        if openers:
            send_all(tb, openers, timeout=30)
            time.sleep(0.3)
        jobs: dict[str, dict] = {}
        for f, src, _, pid, _ in todo:
            jobs.setdefault(src, {"frames": [], "rounds": 2, "gap": 0.2})["frames"].append(
                [ifaces[src], frame(f.header, token(pid)).hex()])
        sent = send_all(tb, jobs, timeout=60)
        time.sleep(SETTLE_S)
        _, tokens = arrival_index(caps.snapshot())
    finally:
        caps.stop()
    confirmed = refuted = 0
    for f, src, dst, pid, _ in todo:
        if sent.get(src, {}).get("error"):
            f.replay, f.replay_detail = "not replayed", f"sender in {src} failed: {sent[src]['error']}"
            continue
        arrived = bool(tokens.get(pid, set()) & set(dst))
        ok = arrived if f.kind == "leak" else not arrived
        f.replay = "confirmed" if ok else "refuted"
        f.replay_detail = f"sent from {src}; {'arrived at' if arrived else 'did not arrive at'} {', '.join(dst)}"
        confirmed += ok
        refuted += not ok
    emit.info(f"verify: replayed {len(todo)} finding(s): {confirmed} confirmed, {refuted} refuted on the wire")
    return len(todo), confirmed, refuted


def verify(tb, on_event: EventSink | None = None, replay_findings: bool = True) -> Verification:
    """Read every switch of the running testbed, prove, replay the findings."""
    emit = Emitter(on_event)
    plan = run_plan(tb.manifest)
    if plan.get("mode") != "slicing":
        return Verification(None, error="the run has no slice policy to verify against (plain forwarding)")
    emit.stage("verify", "reading the switches' flow tables")
    tables, frag_mode = read_tables(tb.manifest)
    emit.info(f"verify: {sum(len(r) for r in tables.values())} rules on {len(tables)} switches; solving every header")
    proof = prove(plan, tables, frag_mode)
    v = Verification(proof)
    c = proof.comparison
    emit.info(f"verify: {c.pairs} pairs in {proof.seconds:.1f}s: {len(c.leaks)} leak(s), "
              f"{len(c.false_blocks)} false block(s)")
    if replay_findings and v.findings:
        t0 = time.monotonic()
        v.replayed, v.confirmed, v.refuted = replay(tb, proof, v.findings, emit)
        v.replay_s = time.monotonic() - t0
    emit.done("verify", f"verified: {len(c.leaks)} leaks, {len(c.false_blocks)} false blocks",
              failed=len(c.leaks) + len(c.false_blocks))
    return v


def results(v: Verification) -> list[CheckResult]:
    """One summary check (pass: no finding) and one failed check per finding."""
    if v.proof is None:
        return [CheckResult("verify", "exhaustive isolation proof", "fail", v.error)]
    s = v.proof.summary()
    c = v.proof.comparison
    ok = not c.findings
    detail = (f"verified: {len(c.leaks)} leaks, {len(c.false_blocks)} false blocks over {c.pairs} ordered pairs "
              f"of {s['host_ports']} host ports and every header (2^{s['header_bits']} per pair); "
              f"{s['rules']} rules on {s['switches']} switches read back; {s['seconds']:.1f}s")
    if v.replayed:
        detail += f"; replayed {v.replayed}: {v.confirmed} confirmed, {v.refuted} refuted"
    out = [CheckResult("verify", "exhaustive isolation proof", "pass" if ok else "fail", detail,
                       {k: s[k] for k in ("leaks", "false_blocks", "pairs", "rules", "switches", "host_ports",
                                          "header_bits", "rounds", "bdd_nodes", "seconds")}, s["seconds"])]
    for f in v.findings[:MAX_LISTED]:
        verdict = "LEAK" if f.kind == "leak" else "FALSE BLOCK"
        out.append(CheckResult(f"verify:{f.kind}", f"{f.src} -> {f.dst}", "fail",
                               f"{f.describe()}" + (" (after a packet that opens its connection)" if f.opener else "")
                               + f"; replay: {f.replay or 'not replayed'}"
                               + (f" ({f.replay_detail})" if f.replay_detail else ""),
                               {"verdict": verdict, "replay": f.replay, "headers": str(f.headers)}))
    return out
