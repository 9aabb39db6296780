"""Security testers' own probes: a Python (Scapy) script run inside a node, judged by the capture
at the target, like the built-in probes. A new attack needs no change to the testbed.

    probes:
      - {name: emr-port-syn, type: script, script: probes/syn-from-service-port.py,
         from: [emr], to: [dr-tablet-01], expect: blocked}

    testbed probe FILE --script probes/syn-from-service-port.py --from emr --to dr-tablet-01 --expect blocked

The script runs once per (from, to) pair, in the `from` node, as `python SCRIPT` with the
testbed's interpreter (Scapy importable), bounded by SCRIPT_TIMEOUT_S. It learns what to attack
from its environment:

  TESTBED_TOKEN        put these bytes in the payload of every frame to be judged (TBP-s0000001)
  TESTBED_IFACE        the node's interface (Scapy: sendp(frame, iface=...))
  TESTBED_SRC, TESTBED_SRC_IP, TESTBED_SRC_MAC            the node it runs in
  TESTBED_TARGET, TESTBED_TARGET_IP, TESTBED_TARGET_MAC   the node whose capture decides
  TESTBED_HOSTS        JSON: every host's {"ip", "mac", "services": {name: "tcp/443"}}
  TESTBED_ROUTE_IFACE, TESTBED_ROUTE_IP   on a 5G UE whose PDU session carries the target: the
                       session's TUN and address. A TUN has no link layer: send IP (Scapy:
                       send(IP(src=..., dst=...)/..., iface=...)). What leaves TESTBED_IFACE with
                       the node's own address meets the UE's radio link, which reaches its gNB only.

A frame carrying the token captured at the target = arrived. Expect `arrive` (pass): it must;
`blocked` (fail): it must not (arriving is a LEAK). The frames carrying the token that left the
node are counted too: a script that sent none proved nothing, and fails. So does one that exits
non-zero or runs out of time.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from traffic import packets as P

from testbed.checks.result import CheckResult
from testbed.events import Emitter, EventSink
from testbed.probe.sessions import ue_routes
from testbed.probe.agents import Captures, arrival_index, host_interfaces
from testbed.topology.model import Probe as ProbeEntry
from testbed.topology.validate import script_path

KIND = "probe:script"
SCRIPT_TIMEOUT_S = 60.0
WORKERS = 4  # scripts run at once (each starts a Python and imports Scapy)
SETTLE_S = 1.0


@dataclass(frozen=True)
class ScriptRun:
    """One script probe between one source and one target."""

    id: str  # its token's 8 characters ('s' + 7 digits: never a matrix, attack or evasion id)
    probe: str
    script: Path
    src: str
    dst: str
    expect: str  # 'pass' (arrive) | 'fail' (blocked)

    @property
    def name(self) -> str:
        return f"{self.probe}: {self.src} -> {self.dst} (expect {'arrive' if self.expect == 'pass' else 'blocked'})"


def plan_scripts(probes: list[ProbeEntry], topology_file: str) -> list[ScriptRun]:
    """Every (from, to) pair of every script probe; `script:` is relative to the topology file."""
    out: list[ScriptRun] = []
    for pr in probes:
        if pr.type != "script" or pr.script is None:
            continue
        path = script_path(pr.script, topology_file).resolve()
        for s in pr.src:
            for d in pr.dst:
                if s != d:
                    out.append(ScriptRun(f"s{len(out) + 1:07d}", pr.name, path, s, d, pr.expect))
    return out


def script_env(tb, run: ScriptRun, iface: str) -> dict[str, str]:
    ips = {n: str(i.ip) for n, i in tb.layout.ips.items()}
    hosts = {n.name: {"ip": ips.get(n.name), "mac": tb.layout.macs.get(n.name),
                      "services": {s.name: f"{s.proto}/{s.port}" for s in n.services}} for n in tb.topo.hosts}
    route = ue_routes(tb).get(run.src, {}).get(ips[run.dst])
    via = {"TESTBED_ROUTE_IFACE": route[0], "TESTBED_ROUTE_IP": route[1]} if route else {}
    return {**via, "TESTBED_TOKEN": P.token(run.id).decode(), "TESTBED_IFACE": iface,
            "TESTBED_SRC": run.src, "TESTBED_SRC_IP": ips[run.src], "TESTBED_SRC_MAC": tb.layout.macs[run.src],
            "TESTBED_TARGET": run.dst, "TESTBED_TARGET_IP": ips[run.dst],
            "TESTBED_TARGET_MAC": tb.layout.macs[run.dst], "TESTBED_HOSTS": json.dumps(hosts)}


def _stage(tb, runs: list[ScriptRun]) -> dict[Path, Path]:
    """Copy each script into the run directory: container nodes see that, not the tester's tree."""
    d = Path(tb.manifest.dir) / "probe-scripts"
    d.mkdir(parents=True, exist_ok=True)
    out: dict[Path, Path] = {}
    for i, path in enumerate(sorted({r.script for r in runs})):
        out[path] = d / f"{i:02d}-{path.name}"
        shutil.copyfile(path, out[path])
    return out


def _execute(tb, run: ScriptRun, staged: Path, iface: str, timeout: float) -> dict:
    job = {"script": str(staged), "iface": iface, "token": P.token(run.id).decode(), "timeout": timeout,
           "env": script_env(tb, run, iface)}
    p = tb.node(run.src).popen([sys.executable, "-m", "traffic.script_probe"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(json.dumps(job), timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return {"error": f"the script runner did not finish within {timeout + 30:.0f}s"}
    try:
        return json.loads(out)
    except ValueError:
        return {"error": (err.strip() or out.strip() or "no output")[-500:]}


def _result(run: ScriptRun, rep: dict, seen_at: set[str], seconds: float) -> CheckResult:
    arrived = run.dst in seen_at
    sent = rep.get("frames_with_token", 0)
    m = {"id": run.id, "token": P.token(run.id).decode(), "script": str(run.script), "sender": run.src,
         "target": run.dst, "expect": "arrive" if run.expect == "pass" else "blocked",
         "captured_at": sorted(seen_at), "frames_sent": sent, "sent": rep.get("sent", []),
         "rc": rep.get("rc"), "script_seconds": rep.get("seconds"),
         "stdout": rep.get("stdout", "")[-500:], "stderr": rep.get("stderr", "")[-500:]}
    failed_run = bool(rep.get("error") or rep.get("timed_out") or rep.get("rc") != 0)
    if rep.get("error"):
        why = rep["error"]
    else:
        why = f"timed out after {rep.get('seconds', 0):.0f}s" if rep.get("timed_out") else f"exit code {rep.get('rc')}"
        if rep.get("stderr", "").strip():
            why += ": " + rep["stderr"].strip().splitlines()[-1]
    if arrived and run.expect == "fail":
        m["verdict"] = "LEAK"
        return CheckResult(KIND, run.name, "fail", f"LEAK: the token was captured at {run.dst}", m, seconds)
    if failed_run:
        m["verdict"] = "error"
        return CheckResult(KIND, run.name, "fail", f"the script failed ({why})", m, seconds)
    if not sent and not arrived:
        m["verdict"] = "not sent"
        return CheckResult(KIND, run.name, "fail", f"no frame carrying the token ({m['token']}) left {run.src}: "
                           "nothing to judge (put TESTBED_TOKEN in the payload)", m, seconds)
    if arrived:
        m["verdict"] = "arrived"
        return CheckResult(KIND, run.name, "pass", f"arrived: the token was captured at {run.dst} "
                           f"({sent} frame(s) sent)", m, seconds)
    if run.expect == "pass":
        m["verdict"] = "FALSE BLOCK"
        return CheckResult(KIND, run.name, "fail", f"FALSE BLOCK: {sent} frame(s) carrying the token left "
                           f"{run.src}, none was captured at {run.dst}", m, seconds)
    m["verdict"] = "blocked"
    return CheckResult(KIND, run.name, "pass", f"blocked: {sent} frame(s) carrying the token left {run.src}, "
                       f"none was captured at {run.dst}", m, seconds)


def run_scripts(tb, runs: list[ScriptRun], caps: Captures, on_event: EventSink | None = None,
                timeout: float = SCRIPT_TIMEOUT_S) -> list[CheckResult]:
    """Run `runs` while `caps` captures at their targets; one CheckResult each."""
    if not runs:
        return []
    emit = Emitter(on_event)
    emit.stage("probe-scripts", f"{len(runs)} script probes", total=len(runs))
    t0 = time.monotonic()
    staged = _stage(tb, runs)
    ifaces = host_interfaces(tb)
    reports: dict[str, dict] = {}
    lock = threading.Lock()

    def one(run: ScriptRun) -> None:
        rep = _execute(tb, run, staged[run.script], ifaces[run.src], timeout)
        with lock:
            reports[run.id] = rep
            emit.progress("probe-scripts", len(reports), len(runs))

    with ThreadPoolExecutor(max_workers=min(WORKERS, len(runs))) as pool:
        list(pool.map(one, runs))
    time.sleep(SETTLE_S)
    _, tokens = arrival_index(caps.snapshot())
    seconds = time.monotonic() - t0
    results = [_result(r, reports[r.id], tokens.get(r.id, set()), seconds) for r in runs]
    failed = sum(c.failed for c in results)
    emit.done("probe-scripts", f"{len(runs)} script probes, {failed} failed", failed=failed)
    return results


def run_script_probes(tb, probes: list[ProbeEntry] | None = None, on_event: EventSink | None = None,
                      timeout: float = SCRIPT_TIMEOUT_S) -> list[CheckResult]:
    """The script probes of the topology file (or `probes`) on their own: captures at the targets only."""
    runs = plan_scripts(tb.topo.probes if probes is None else probes, tb.source)
    if not runs:
        return []
    caps = Captures(tb, {}, max_seconds=timeout * len(runs) + 120, hosts={r.dst for r in runs})
    caps.start()
    try:
        return run_scripts(tb, runs, caps, on_event, timeout)
    finally:
        caps.stop()
