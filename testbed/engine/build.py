"""Building a run, stage by stage: each stage records what it creates before creating it.

Order matters: the controller first (switches connect as soon as they exist),
then node runtimes (containers), hosts and switches, links, per-node set-up,
impairment points, switches started (and their rules confirmed), the daemons
the node kinds run inside their nodes, and last the 5G programs (engine/ran.py).
`Testbed.up()` calls `build()`; on any error it tears down whatever was recorded.
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from testbed import kinds, platform, services
from testbed.engine import hostconfig, links, runtimes
from testbed.engine.controller import resolve_app, start_controller
from testbed.engine.sockbuf import port_room, port_socket_buffers
from testbed.engine.ownership import owner_fields
from testbed.engine.procs import netns_inode, record
from testbed.engine.rundir import NodeRecord, process_start_time
from testbed.errors import BuildError, PlatformError
from testbed.engine.ran import preflight as ran_preflight, run_controller_plan, start_ran
from testbed.topology.resolve import node_settings

if TYPE_CHECKING:
    from testbed.engine.testbed import Testbed

REQUIRED_TOOLS = ("mnexec", "ethtool", "tc")


def preflight(tb: "Testbed") -> bool:
    """Everything that can be checked before anything is created: root, OVS, tools, each runtime's needs.
    Returns whether the run moves TCP as 64 KB frames (userspace TSO in force, no 5G path)."""
    if os.geteuid() != 0:
        raise PlatformError("building a network needs root (network namespaces, Open vSwitch)")
    ok, detail = platform.ovs_running()
    if not ok:
        raise PlatformError(detail)
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            raise PlatformError(f"{tool} not found; run `make setup`")
    tso = False
    if platform.choose_datapath() == "netdev":
        in_force, why = platform.userspace_tso()
        if in_force is None:
            raise PlatformError(f"Open vSwitch userspace TSO: {why}")
        # This OVS (3.1) re-cuts a TCP super-frame to its output port's MTU, not to the sender's segment
        # size: a UPF would get 1,500-octet packets for its 1,400-octet N6 TUN and drop them (measured:
        # a desktop session through a PDU session stalled). So a run with the 5G path moves MTU frames.
        tso = bool(in_force) and tb.ran is None
    ran_preflight(tb)
    hostconfig.neighbour_room(tb)  # the machine's ARP table: raised, or refused here before anything exists
    by_runtime: dict[str, list] = defaultdict(list)
    for n in tb.topo.hosts:
        by_runtime[node_settings(tb.topo, n).runtime].append(n)
    for name, nodes in by_runtime.items():
        rt = runtimes.new(name)
        tb.timings.update(rt.prepare(tb.topo, nodes, tb.emit))
        tb.runtimes[name] = rt
    tb.node_runtime = {n.name: name for name, nodes in by_runtime.items() for n in nodes}
    return tso


def build(tb: "Testbed") -> None:
    from testbed.engine.mn import new_net

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    hosts_file = hostconfig.write_hosts_file(tb)
    tb.net = new_net()
    attach_controller(tb)
    add_nodes(tb, hosts_file)
    impaired = links.add_links(tb)
    record_switch_shells(tb)
    tb.emit.stage("configure", "addresses, offloads, name resolution")
    tb.net.build()
    segmenting = hostconfig.segmenting_ends(tb)
    hostconfig.configure_hosts(tb, hosts_file, segmenting)
    hostconfig.configure_switch_ports(tb, segmenting)
    tb.emit.done("configure")
    if impaired:
        links.start_impairments(tb, impaired)
    start_switches(tb)
    start_daemons(tb)
    start_ran(tb)
    tb.manifest.state = "up"
    tb.manifest.save()


def attach_controller(tb: "Testbed") -> None:
    """The run's own controller process (or the file's remote one), before any switch exists."""
    from mininet.node import RemoteController

    m, topo = tb.manifest, tb.topo
    if topo.controller.remote:
        host, port = topo.controller.remote.rsplit(":", 1)
        ctrl_ip, ctrl_port = host, int(port)
        m.controller = {"remote": topo.controller.remote}
    else:
        app = resolve_app(tb.controller_app or topo.controller.app, Path(tb.source).parent, sliced=bool(topo.slices))
        tb.controller = start_controller(app, m.dir, run_controller_plan(topo, tb.layout, tb.ran))
        m.pids["controller"] = record(tb.controller.proc.pid)
        m.controller = {"app": app, "port": tb.controller.port, "log": str(tb.controller.log_path)}
        ctrl_ip, ctrl_port = "127.0.0.1", tb.controller.port
        m.save()
    tb.net.addController(RemoteController("c0", ip=ctrl_ip, port=ctrl_port))


def add_nodes(tb: "Testbed", hosts_file: Path) -> None:
    """Hosts through their runtimes (containers started first, in parallel), then the OVS bridges."""
    from testbed.engine.mn import TbSwitch

    lay, m, topo, net = tb.layout, tb.manifest, tb.topo, tb.net
    for name, rt in tb.runtimes.items():
        nodes = [n for n in topo.hosts if tb.node_runtime[n.name] == name]
        tb.timings.update(rt.start(topo, nodes, m, hosts_file, Path(tb.source).parent, tb.emit))
    hosts = topo.hosts
    tb.emit.stage("nodes", "starting node namespaces", total=len(hosts))
    for i, n in enumerate(hosts):
        rt = tb.runtime_of(n.name)
        h = net.addHost(lay.internal[n.name], ip=str(lay.ips[n.name]), mac=lay.macs[n.name],
                        **rt.host_params(n.name))
        tb.mn_nodes[n.name] = h
        m.nodes[n.name] = NodeRecord(name=n.name, internal=h.name, kind=n.kind, site=n.site,
                                     ip=str(lay.ips[n.name].ip), mac=lay.macs[n.name], pid=h.pid,
                                     pid_start=process_start_time(h.pid), netns=netns_inode(h.pid),
                                     **rt.record_fields(n.name))
        m.save_throttled()
        tb.emit.progress("nodes", i + 1, len(hosts))
    dp = "user" if m.datapath == "netdev" else "kernel"
    for n in topo.switches:
        sw = net.addSwitch(lay.internal[n.name], cls=TbSwitch, dpid=lay.dpids[n.name], datapath=dp,
                           protocols="OpenFlow13", failMode="secure", batch=True,
                           run_id=m.run_id, node_name=n.name, owner=owner_fields(m.supervisor_pid, m.supervisor_start))
        tb.mn_nodes[n.name] = sw
        m.bridges.append(sw.name)
        m.nodes[n.name] = NodeRecord(name=n.name, internal=sw.name, kind=n.kind, site=n.site,
                                     dpid=lay.dpids[n.name])  # its shell, if one is started: record_shells
    m.save()
    tb.emit.done("nodes", f"{len(hosts)} hosts, {len(topo.switches)} switches")


def record_switch_shells(tb: "Testbed") -> None:
    """The switches whose shell something started (TbSwitch starts none of its own): their PIDs, for
    teardown. Called after the links, which start one for a switch end of a link Mininet itself wires."""
    m = tb.manifest
    for n in tb.topo.switches:
        pid = tb.mn_nodes[n.name].shell_pid
        if pid and m.nodes[n.name].pid != pid:
            m.nodes[n.name].pid, m.nodes[n.name].pid_start = pid, process_start_time(pid)
    m.save()


def start_switches(tb: "Testbed") -> None:
    """Start the bridges and wait until the controller confirmed every switch's rules (barrier replies)."""
    dpids = set(tb.layout.dpids.values())
    tb.emit.stage("switches", "starting switches", total=len(dpids))
    t_sw = time.monotonic()
    with port_socket_buffers(port_room(tb.manifest.tso)):  # the ports' sockets open now: with room for a burst
        tb.net.start()
    if tb.controller is not None:
        tb.timings["rules_wait_s"] = tb.controller.wait_ready(
            dpids, tb.ready_timeout, lambda d, t: tb.emit.progress("switches", d, t, "rules installed"))
        tb.timings.update(tb.controller.install_times())
    tb.timings["switches_s"] = time.monotonic() - t_sw
    tb.emit.done("switches", f"{len(dpids)} switches connected, rules installed")


def daemon_argv(kind: kinds.Kind, node, ip: str) -> list[list[str]]:
    """The argv of each daemon the node's kind runs in it ({node}, {ip}, {services} filled in)."""
    ports = ",".join(str(s.port) for s in node.services)
    return [[a.format(node=node.name, ip=ip, services=ports) for a in d.argv] for d in kind.daemons]


@dataclass(frozen=True)
class DaemonJob:
    node: str
    label: str
    argv: list[str]
    listen: tuple[str, int] | None  # (proto, port) it binds when ready; None: nothing to wait for


def daemon_jobs(tb: "Testbed") -> list[DaemonJob]:
    """What runs inside the nodes while the testbed is up: each kind's daemons and each offered
    service's server (testbed.services), placeholders filled for this run."""
    jobs: list[DaemonJob] = []
    for n in tb.topo.hosts:
        kind, ip = kinds.get(n.kind), str(tb.layout.ips[n.name].ip)
        for d, argv in zip(kind.daemons, daemon_argv(kind, n, ip)):
            port = kind.ready_port
            jobs.append(DaemonJob(n.name, d.name, argv, ("tcp", port) if port else None))
        fill = {"python": sys.executable, "ip": ip, "node": n.name, "pki": str(tb.manifest.dir / "pki"),
                "data": str(tb.manifest.dir / "data" / n.name)}
        for svc in n.services:
            argv = services.server_argv(svc.name, svc.port, fill)
            if argv is not None:
                jobs.append(DaemonJob(n.name, svc.name, argv, (svc.proto, svc.port)))
    return jobs


def _prepare_files(tb: "Testbed", jobs: list[DaemonJob]) -> None:
    """The run's CA and certificates for TLS-serving nodes; a scratch directory per serving node."""
    tls = {j.node for j in jobs if (s := services.spec(j.label)) is not None and s.tls}
    if tls:
        from testbed.engine.pki import make_pki

        make_pki(tb.manifest.dir / "pki", tb.run_id, {n: str(tb.layout.ips[n].ip) for n in sorted(tls)})
    for node in {j.node for j in jobs}:
        (tb.manifest.dir / "data" / node).mkdir(parents=True, exist_ok=True)


def _listening(tb: "Testbed", node: str) -> set[tuple[str, int]]:
    """(proto, port) of every socket listening (TCP) or bound (UDP) in the node."""
    try:
        out = tb.node(node).run(["ss", "-Hlntu"], timeout=10).stdout
    except subprocess.TimeoutExpired:  # a starved host: ask again on the next round
        return set()
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[4].rpartition(":")[2].isdigit():
            found.add((parts[0], int(parts[4].rpartition(":")[2])))
    return found


def start_daemons(tb: "Testbed", ready_timeout: float = 30.0) -> None:
    """Start every node daemon and service server; return when each listens on its port."""
    jobs = daemon_jobs(tb)
    if not jobs:
        return
    tb.emit.stage("daemons", "starting services and node daemons", total=len(jobs))
    _prepare_files(tb, jobs)
    log_dir = tb.manifest.dir / "daemons"
    log_dir.mkdir(exist_ok=True)
    procs = []
    for job in jobs:
        log_path = log_dir / f"{job.node}-{job.label}.log"
        with open(log_path, "ab") as log:
            procs.append((job, log_path, tb.node(job.node).popen(job.argv, stdout=log, stderr=log,
                                                                 stdin=subprocess.DEVNULL, start_new_session=True)))
    deadline = time.monotonic() + ready_timeout
    pending = [(j, lp, p) for j, lp, p in procs if j.listen is not None]
    ready = len(procs) - len(pending)
    while pending:
        by_node: dict[str, set] = {}
        still = []
        for job, log_path, proc in pending:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-1500:]
                raise BuildError(f"{job.node}: {job.label} exited with code {proc.returncode}:\n{tail}")
            if job.node not in by_node:
                by_node[job.node] = _listening(tb, job.node)
            if job.listen in by_node[job.node]:
                ready += 1
                tb.emit.progress("daemons", ready, len(procs))
            else:
                still.append((job, log_path, proc))
        pending = still
        if pending and time.monotonic() > deadline:
            names = ", ".join(f"{j.node}:{j.label}" for j, _, _ in pending[:5])
            raise BuildError(f"not listening within {ready_timeout:.0f}s: {names}; see {log_dir}")
        if pending:
            time.sleep(0.1)
    tb.emit.done("daemons", f"{len(procs)} services and daemons running")
