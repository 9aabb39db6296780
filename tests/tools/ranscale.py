"""How many UEs the built-in 5G programs bring up, and how fast: N UEs, each registering with 2 PDU sessions.

    sudo .venv/bin/python -m tests.tools.ranscale 200

Every UE runs in its own namespace (as a testbed UE node does), all on one
bridge with the gNB, the core and the UPF (everything named tbrs<hex>, removed
at the end, nothing else touched). The core, UPF and gNB start first and are
waited for; then all UEs start at once, and the clock runs until the core has
set up 2 x N sessions. Prints one JSON line: the time to spawn the UE
processes, the time until every session is up (UEs per second), registration
and session set-up times as the UEs measured them, memory per UE (RSS and
PSS), CPU seconds of the core, gNB and UPF, and the core's counters.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from testbed.ran import agents
from testbed.ran.plan import ran_plan
from testbed.topology.loader import parse_text

REPO = Path(__file__).resolve().parents[2]
PORTS_PER_SWITCH = 90  # the topology model allows 99 ports per switch


def topology_text(n: int) -> str:
    switches = (n + PORTS_PER_SWITCH - 1) // PORTS_PER_SWITCH
    ues = [f"ue-{i:03d}" for i in range(n)]
    nodes = [f"  - {{name: clinic-sw{k}, kind: switch, site: clinic}}" for k in range(switches)]
    nodes += [f"  - {{name: {u}, kind: ue, site: clinic}}" for u in ues]
    links = [f"  - {{endpoints: [clinic-sw{k}, core-sw]}}" for k in range(switches)]
    links += [f"  - {{endpoints: [{u}, clinic-sw{i // PORTS_PER_SWITCH}]}}" for i, u in enumerate(ues)]
    members = ", ".join(ues)
    return "\n".join([
        "name: ranscale",
        "defaults: {addressing: {pool: 10.252.0.0/16}}",
        "sites: [{name: dc, type: datacentre}, {name: clinic, type: clinic}]",
        "nodes:",
        "  - {name: core-sw, kind: switch, site: dc}",
        "  - {name: emr, kind: server, site: dc, services: [emr]}",
        "  - {name: pacs, kind: server, site: dc, services: [pacs]}",
        "  - {name: upf-1, kind: upf, site: dc}",
        "  - {name: gnb-1, kind: gnb, site: clinic}",
        *nodes,
        "links:",
        "  - {endpoints: [emr, core-sw]}",
        "  - {endpoints: [pacs, core-sw]}",
        "  - {endpoints: [upf-1, core-sw]}",
        "  - {endpoints: [gnb-1, clinic-sw0]}",
        *links,
        "slices:",
        f'  - {{name: clinical, sst: 1, sd: "000001", fiveqi: 7, members: [{members}], services: [emr]}}',
        f'  - {{name: imaging, sst: 1, sd: "000002", fiveqi: 8, members: [{members}], services: [pacs]}}',
        'ran: {plmn: {mcc: "460", mnc: "00"}}',
    ]) + "\n"


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=30)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_kib(pid: int, key: str, path: str) -> int:
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def run(n: int, workdir: Path, timeout: float = 300.0) -> dict:
    topo = parse_text(topology_text(n), "ranscale.yaml")
    plan = ran_plan(topo, seed="ranscale")
    tag = secrets.token_hex(2)
    addrs = {k: str(v) for k, v in agents.node_addresses(topo).items()}
    roles = {"upf": str(plan.upfs[0].address), "core": str(plan.core.address), "gnb": str(plan.gnbs[0].address)}
    roles.update({s.name: addrs[s.name] for s in plan.subscribers})
    configs = {}
    for a in agents.agents(topo, plan):
        configs[{"amf": "core", "upf": "upf", "gnb": "gnb"}.get(a.program, a.node)] = (a.program, a.config)
    workdir.mkdir(parents=True, exist_ok=True)
    created: list[str] = []
    procs: dict[str, subprocess.Popen] = {}
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def ns(role: str) -> str:
        return f"tbrs{tag}-{role}"

    def start(role: str) -> None:
        prog, cfg = configs[role]
        (workdir / f"{role}.json").write_text(json.dumps(cfg))
        procs[role] = subprocess.Popen(
            ["ip", "netns", "exec", ns(role), sys.executable, "-m", f"testbed.ran.{prog}", "--config",
             str(workdir / f"{role}.json"), "--status", str(workdir / f"{role}-status.json")],
            stdout=open(workdir / f"{role}.log", "w"), stderr=subprocess.STDOUT, env=env)

    def status(role: str) -> dict:
        try:
            return json.loads((workdir / f"{role}-status.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait(pred, limit: float) -> bool:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if pred():
                return True
            time.sleep(0.1)
        return False

    try:
        _run("ip", "netns", "add", ns("sw"))
        created.append(ns("sw"))
        _run("ip", "-n", ns("sw"), "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", ns("sw"), "link", "set", "br0", "up")
        for i, (role, address) in enumerate(roles.items()):
            _run("ip", "netns", "add", ns(role))
            created.append(ns(role))
            _run("ip", "-n", ns("sw"), "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0",
                 "netns", ns(role))
            _run("ip", "-n", ns("sw"), "link", "set", f"p{i}", "master", "br0", "up")
            _run("ip", "-n", ns(role), "addr", "add", f"{address}/16", "dev", "eth0")
            _run("ip", "-n", ns(role), "link", "set", "eth0", "up")
        start("upf")
        wait(lambda: status("upf"), 30)
        start("core")
        wait(lambda: status("core").get("n4", {}).get("upfs", {}).get("upf-1") == "associated", 30)
        start("gnb")
        wait(lambda: status("gnb").get("n2", {}).get("state") == "ready", 30)
        cpu0 = {r: _cpu_s(procs[r].pid) for r in ("core", "gnb", "upf")}
        t0 = time.monotonic()
        for sub in plan.subscribers:
            start(sub.name)
        spawn_s = time.monotonic() - t0
        ok = wait(lambda: status("core").get("counters", {}).get("sessions", 0) >= 2 * n, timeout)
        up_s = time.monotonic() - t0
        ues = [status(s.name) for s in plan.subscribers]
        reg = sorted(u.get("registration_ms") or 0.0 for u in ues)
        sess = sorted(x.get("setup_ms") or 0.0 for u in ues for x in u.get("sessions", []))
        pids = [procs[s.name].pid for s in plan.subscribers]
        rss = sorted(_memory_kib(p, "VmRSS:", "status") for p in pids)
        pss = sorted(_memory_kib(p, "Pss:", "smaps_rollup") for p in pids)
        return {"ues": n, "all_sessions_up": ok, "spawn_s": round(spawn_s, 2), "all_up_s": round(up_s, 2),
                "ues_per_s": round(n / up_s, 1), "registration_ms_median": reg[n // 2], "registration_ms_max": reg[-1],
                "session_ms_median": sess[len(sess) // 2], "session_ms_max": sess[-1],
                "ue_rss_kib_median": rss[n // 2], "ue_pss_kib_median": pss[n // 2],
                "cpu_s": {r: round(_cpu_s(procs[r].pid) - c, 2) for r, c in cpu0.items()},
                "core_counters": status("core").get("counters"), "loadavg": os.getloadavg()}
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for name in reversed(created):
            _run("ip", "netns", "del", name, check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ues", type=int, help="how many UEs (each with 2 PDU sessions)")
    ap.add_argument("--workdir", default=f"/tmp/ranscale-{os.getpid()}", help="configs, logs and status files")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every session")
    a = ap.parse_args(argv)
    if not 1 <= a.ues <= 2000:
        ap.error("1 to 2000 UEs")
    print(json.dumps(run(a.ues, Path(a.workdir), a.timeout)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
