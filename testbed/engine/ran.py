"""Starting the built-in 5G programs inside the run's nodes: UPFs, core, gNBs, then UEs.

The programs and their configs come from testbed.ran.agents (pure); this stage
writes each config into the run directory (`ran/NODE.json`), starts the
program inside its node with a status file beside it (the core and the gNBs
forked from one server that imported pycrate once, testbed.ran.forkserver;
the others as their own process), and waits, group by
group, until the status files say the group is ready: a UPF once it runs, the
core once every UPF took its N4 association, a gNB once NG setup completed
(it answers no UE before), a UE once it registered and each of its PDU
sessions is active or was refused. The servers' return routes to the session
pools (through their UPF, N6) go in before the first UE registers.

A program that exits, or a group not ready in time, fails the build with the
program's log tail (the run is then torn down; the processes live in the
run's nodes, so teardown ends them). The registration and session set-up
times are read back from the status files for the report (`ran_view`).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.errors import BuildError, PlatformError
from testbed.ran import agents as ran_agents
from testbed.ran.forkserver import Forked, ForkServer
from testbed.ran.network import session_host

if TYPE_CHECKING:
    from testbed.engine.testbed import Testbed

READY_TIMEOUT_S = 60.0
# The programs that import pycrate's NGAP (0.3 s of CPU each): forked from one process that imported it once
# (testbed.ran.forkserver); TESTBED_FORKSERVER=0 starts each as its own process again
FORKED = ("amf", "gnb")
FINAL_SESSION_STATES = {"active", "rejected", "timeout"}


def _ue_ready(st: dict) -> bool:
    if st.get("state") == "rejected":
        return True
    return st.get("state") == "registered" and all(s.get("state") in FINAL_SESSION_STATES
                                                   for s in st.get("sessions", []))


READY: dict[str, Callable[[dict], bool]] = {
    "upf": lambda st: bool(st),
    "amf": lambda st: bool(st.get("n4", {}).get("upfs")) and all(v == "associated"
                                                                  for v in st["n4"]["upfs"].values()),
    "gnb": lambda st: st.get("n2", {}).get("state") == "ready",
    "ue": _ue_ready,
}


def ran_dir(tb: "Testbed") -> Path:
    return tb.manifest.dir / "ran"


def status_file(run_dir: Path, node: str) -> Path:
    """Where the 5G program of `node` keeps its status, in a run directory."""
    return run_dir / "ran" / f"{node}.status.json"


def status_path(tb: "Testbed", node: str) -> Path:
    return status_file(tb.manifest.dir, node)


def read_status(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def preflight(tb: "Testbed") -> None:
    """What the file's RAN backend needs, before anything is built."""
    if tb.ran is None:
        return
    if tb.topo.ran.backend == "ueransim":
        from testbed.ran import n2

        if not n2.sctp_available():
            raise PlatformError("ran.backend ueransim: UERANSIM's gNB and Open5GS's AMF speak NGAP over SCTP, and "
                                "this kernel has no SCTP (modprobe sctp fails); use ran.backend builtin, which "
                                "falls back to NGAP over TCP")
        raise PlatformError("ran.backend ueransim: running UERANSIM/Open5GS containers is not built yet; "
                            "`testbed ran configs` writes their configuration files")


def start_ran(tb: "Testbed") -> None:
    """Start every 5G program in order and wait for each group; install the servers' return routes."""
    plan = tb.ran
    if plan is None:
        return
    addresses = {n: str(i.ip) for n, i in tb.layout.ips.items()}
    programs = ran_agents.agents(tb.topo, plan, addresses)
    ran_dir(tb).mkdir(exist_ok=True)
    tb.emit.stage("ran", "starting the 5G core, gNBs and UEs", total=len(programs))
    t0 = time.monotonic()
    done = 0
    server = _fork_server(programs)
    try:
        for program in ran_agents.PROGRAMS:
            group = [a for a in programs if a.program == program]
            if program == "ue":
                install_server_routes(tb, ran_agents.server_routes(tb.topo, plan, addresses))
            procs = [_start(tb, a, server) for a in group]
            done = _wait(tb, group, procs, done, len(programs))
            tb.timings[f"ran_{program}_s"] = time.monotonic() - t0
    finally:
        if server is not None:
            server.close()
    tb.timings["ran_s"] = time.monotonic() - t0
    times = ran_view(plan, tb.manifest.dir, tb.topo.ran.backend)["summary"]
    tb.emit.done("ran", f"{times['registered']}/{times['ues']} UEs registered, "
                        f"{times['sessions_active']}/{times['sessions']} PDU sessions active")


def _fork_server(programs: list[ran_agents.Agent]) -> ForkServer | None:
    """A server that imports the forked programs' modules while the UPFs start (None: start each alone)."""
    modules = sorted({a.module for a in programs if a.program in FORKED})
    if not modules or os.environ.get("TESTBED_FORKSERVER", "1") == "0":
        return None
    return ForkServer(modules)


def _start(tb: "Testbed", agent: ran_agents.Agent, server: ForkServer | None = None) -> subprocess.Popen | Forked:
    cfg = ran_dir(tb) / f"{agent.node}.json"
    cfg.write_text(json.dumps(agent.config, indent=1))
    status = status_path(tb, agent.node)
    status.unlink(missing_ok=True)
    log_path = ran_dir(tb) / f"{agent.node}.log"
    if server is not None and agent.program in FORKED:
        why = server.wait_ready()
        if why is None:
            rec = tb.manifest.nodes[agent.node]
            spec = tb.runtime_of(agent.node).enter_spec(rec)
            p = server.spawn(agent.node, agent.module, agent.args(str(cfg), str(status)), str(log_path), spec)
            if p.error is None:
                return p
            why = p.error
        if server.broken is None:
            server.broken = why
            tb.emit.warning(f"5G fork server: {why}; starting each {agent.program} as its own process")
    with open(log_path, "ab") as log:
        argv = agent.argv(str(cfg), str(status), python=sys.executable)
        return tb.node(agent.node).popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)


def _wait(tb: "Testbed", group: list[ran_agents.Agent], procs: list[subprocess.Popen | Forked], done: int,
          total: int, timeout: float = READY_TIMEOUT_S) -> int:
    pending = list(zip(group, procs))
    deadline = time.monotonic() + timeout
    while pending:
        still = []
        for agent, proc in pending:
            if READY[agent.program](read_status(status_path(tb, agent.node))):
                done += 1
                tb.emit.progress("ran", done, total)
                continue
            if proc.poll() is not None:
                raise BuildError(f"{agent.node}: the 5G {agent.program} program exited with code "
                                 f"{proc.returncode}:\n{_tail(tb, agent.node)}")
            still.append((agent, proc))
        pending = still
        if pending and time.monotonic() > deadline:
            agent = pending[0][0]
            raise BuildError(f"5G {agent.program} not ready within {timeout:.0f} s: "
                             f"{', '.join(a.node for a, _ in pending[:5])}; status "
                             f"{json.dumps(read_status(status_path(tb, agent.node)))[:600]}\n{_tail(tb, agent.node)}")
        if pending:
            time.sleep(0.05)
    return done


def _tail(tb: "Testbed", node: str) -> str:
    try:
        return (ran_dir(tb) / f"{node}.log").read_text(errors="replace")[-1500:]
    except OSError:
        return "(no log)"


def install_server_routes(tb: "Testbed", routes: dict[str, list[tuple[str, str]]]) -> None:
    """`ip route replace POOL via UPF` in each server granted to a session (replies go back through N6)."""
    for node, entries in routes.items():
        if node not in tb.node_runtime:
            continue
        script = "; ".join(f"ip route replace {dest} via {via}" for dest, via in entries)
        r = tb.node(node).run(["sh", "-ec", script], timeout=20)
        if r.returncode != 0:
            raise BuildError(f"{node}: cannot route the PDU session pools via their UPF: {r.stderr.strip()}")


def run_controller_plan(topo, layout, plan, extra_members: dict[str, list[str]] | None = None,
                        revoked: dict[str, list[str]] | None = None, generation: int = 1) -> dict:
    """The controller plan of a run: with a 5G path, the policy the switches enforce is the sessions' one
    (testbed.ran.network.enforced_policy: slice grants on the PDU session addresses behind their UPF)."""
    from testbed.slicing.plan import controller_plan

    if plan is None:
        return controller_plan(topo, layout, extra_members, revoked, generation)
    from testbed.ran.network import enforced_policy

    policy, aliases = enforced_policy(topo, plan, extra_members, revoked)
    return controller_plan(topo, layout, extra_members, revoked, generation, policy=policy, aliases=aliases)


def core_anchors(plan, run_dir: Path) -> dict[str, str] | None:
    """Session host -> the UPF the core anchors it at now, for every session not at its planned UPF
    (None: the core's status file cannot be read). The MEC fallback moves them (testbed.ran.amf)."""
    st = read_status(status_file(run_dir, plan.core.name))
    if not st:
        return None
    planned = {(s.ue, s.psi): s for s in plan.sessions}
    out = {}
    for ue in st.get("ues", []):
        for live in ue.get("sessions", []):
            s = planned.get((ue.get("name"), live.get("psi")))
            if s is not None and live.get("upf") and live["upf"] != s.upf:
                out[session_host(s)] = live["upf"]
    return out


def ran_view(plan, run_dir: Path, backend: str = "builtin") -> dict[str, Any]:
    """The 5G part of a run as the report and `testbed ran status` show it: per UE its registration and
    sessions (TUN, address, TEIDs, QFI, DSCP, the UPF the core anchors it at now and the planned and
    fallback ones, state, set-up time), per UPF its drops by reason."""
    from testbed.ran import n2

    def status(node: str) -> dict[str, Any]:
        return read_status(status_file(run_dir, node))

    core = status(plan.core.name)
    anchored = core_anchors(plan, run_dir) or {}
    ues = []
    for sub in plan.subscribers:
        st = status(sub.name)
        live = {s.get("psi"): s for s in st.get("sessions", [])}
        ues.append({"name": sub.name, "supi": sub.supi, "gnb": st.get("cell") or sub.gnb,  # where it is attached now
                    "gnbs": list(sub.cells), "state": st.get("state", "not running"),
                    "registration_ms": st.get("registration_ms"),
                    # how often it registered, and lost its radio link: a UE that re-registered mid-run lost
                    # its sessions' packets meanwhile (the probe's delivery control names such sources)
                    "registrations": len(st.get("attaches", [])),
                    "registered_at": [a.get("registered_at") for a in st.get("attaches", [])],  # Unix time, each
                    "link_losses": st.get("counters", {}).get("link_losses", 0),
                    "link_lost_at": [e.get("at") for e in st.get("link_losses", [])],  # Unix time, each
                    "sessions": [{"psi": s.psi, "slice": s.slice, "snssai": str(s.snssai), "dnn": s.dnn,
                                  "tun": s.tun, "address": str(s.address),
                                  "upf": anchored.get(session_host(s), s.upf),  # where the core anchors it now
                                  "planned_upf": s.upf, "fallback_upf": s.fallback_upf,
                                  "ul_teid": f"{s.ul_teid:#010x}", "dl_teid": f"{s.dl_teid:#010x}", "qfi": s.qfi,
                                  "fiveqi": s.fiveqi, "dscp": s.dscp,
                                  "state": live.get(s.psi, {}).get("state", "none"),
                                  "setup_ms": live.get(s.psi, {}).get("setup_ms"),
                                  "cause": live.get(s.psi, {}).get("cause_name")} for s in sub.sessions]})
    upfs = [{"name": u.name, "address": str(u.address), "role": u.role, "sites": list(u.sites),
             "slices": list(u.slices), "sessions": sum(1 for s in plan.sessions if s.upf == u.name),
             "drops": status(u.name).get("drops", {})} for u in plan.upfs]
    gnb_n2 = next((status(g.name).get("n2", {}) for g in plan.gnbs), {})
    return {"backend": backend, "plmn": plan.plmn, "core": {"name": plan.core.name, "address": str(plan.core.address),
                                                            "rejects": core.get("rejects", [])[-20:]},
            "n2_transport": gnb_n2.get("transport") or n2.choose("auto"),
            "n2_note": "" if gnb_n2.get("transport") == "sctp" else
            "NGAP over TCP with a 4-octet length prefix per PDU: this kernel has no SCTP",
            "gnbs": [{"name": g.name, "address": str(g.address), "gnb_id": g.gnb_id, "site": g.site,
                      "n2": status(g.name).get("n2", {}).get("state", "not running")} for g in plan.gnbs],
            "upfs": upfs, "ues": ues, "summary": _summary(ues)}


def _summary(ues: list[dict[str, Any]]) -> dict[str, Any]:
    reg = sorted(u["registration_ms"] for u in ues if u["registration_ms"] is not None)
    setup = sorted(s["setup_ms"] for u in ues for s in u["sessions"] if s["setup_ms"] is not None)
    out: dict[str, Any] = {"ues": len(ues), "registered": sum(u["state"] == "registered" for u in ues),
                           "sessions": sum(len(u["sessions"]) for u in ues),
                           "sessions_active": sum(s["state"] == "active" for u in ues for s in u["sessions"])}
    for name, values in (("registration_ms", reg), ("session_setup_ms", setup)):
        if values:
            out[name] = {"median": round(statistics.median(values), 2),
                         "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 2),
                         "max": round(values[-1], 2)}
    return out
