"""Building a run, stage by stage: each stage records what it creates before creating it.

Order matters: the controller first (switches connect as soon as they exist),
then node runtimes (containers), hosts and switches, links, per-node set-up,
impairment points, switches started (and their rules confirmed), and last the
daemons the node kinds run inside their nodes. `Testbed.up()` calls `build()`;
on any error it tears down whatever was recorded.
"""
from __future__ import annotations

import os
import resource
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from testbed import kinds, platform
from testbed.engine import hostconfig, links, runtimes
from testbed.engine.controller import resolve_app, start_controller
from testbed.engine.procs import netns_inode, record
from testbed.engine.rundir import NodeRecord, process_start_time
from testbed.errors import BuildError, PlatformError
from testbed.slicing.plan import controller_plan
from testbed.topology.resolve import node_settings

if TYPE_CHECKING:
    from testbed.engine.testbed import Testbed

REQUIRED_TOOLS = ("mnexec", "ethtool", "tc")


def preflight(tb: "Testbed") -> None:
    """Everything that can be checked before anything is created: root, OVS, tools, each runtime's needs."""
    if os.geteuid() != 0:
        raise PlatformError("building a network needs root (network namespaces, Open vSwitch)")
    ok, detail = platform.ovs_running()
    if not ok:
        raise PlatformError(detail)
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            raise PlatformError(f"{tool} not found; run `make setup`")
    by_runtime: dict[str, list] = defaultdict(list)
    for n in tb.topo.hosts:
        by_runtime[node_settings(tb.topo, n).runtime].append(n)
    for name, nodes in by_runtime.items():
        rt = runtimes.new(name)
        tb.timings.update(rt.prepare(tb.topo, nodes, tb.emit))
        tb.runtimes[name] = rt
    tb.node_runtime = {n.name: name for name, nodes in by_runtime.items() for n in nodes}


def build(tb: "Testbed") -> None:
    from testbed.engine.mn import new_net

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    hosts_file = hostconfig.write_hosts_file(tb)
    tb.net = new_net()
    attach_controller(tb)
    add_nodes(tb, hosts_file)
    impaired = links.add_links(tb)
    tb.emit.stage("configure", "addresses, offloads, name resolution")
    tb.net.build()
    hostconfig.configure_hosts(tb, hosts_file)
    hostconfig.configure_switch_ports(tb)
    tb.emit.done("configure")
    if impaired:
        links.start_impairments(tb, impaired)
    start_switches(tb)
    start_daemons(tb)
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
        tb.controller = start_controller(app, m.dir, controller_plan(topo, tb.layout))
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
                           run_id=m.run_id, node_name=n.name)
        tb.mn_nodes[n.name] = sw
        m.bridges.append(sw.name)
        m.nodes[n.name] = NodeRecord(name=n.name, internal=sw.name, kind=n.kind, site=n.site,
                                     dpid=lay.dpids[n.name], pid=sw.pid, pid_start=process_start_time(sw.pid))
    m.save()
    tb.emit.done("nodes", f"{len(hosts)} hosts, {len(topo.switches)} switches")


def start_switches(tb: "Testbed") -> None:
    """Start the bridges and wait until the controller confirmed every switch's rules (barrier replies)."""
    dpids = set(tb.layout.dpids.values())
    tb.emit.stage("switches", "starting switches", total=len(dpids))
    t_sw = time.monotonic()
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


def start_daemons(tb: "Testbed", ready_timeout: float = 20.0) -> None:
    """Start what each node's kind runs inside it; wait for the kind's ready port where it declares one."""
    jobs = [(n, kinds.get(n.kind)) for n in tb.topo.hosts if kinds.get(n.kind).daemons]
    if not jobs:
        return
    tb.emit.stage("daemons", "starting node daemons", total=len(jobs))
    log_dir = tb.manifest.dir / "daemons"
    log_dir.mkdir(exist_ok=True)
    for i, (n, kind) in enumerate(jobs):
        for j, argv in enumerate(daemon_argv(kind, n, tb.node(n.name).ip)):
            with open(log_dir / f"{n.name}-{kind.daemons[j].name}.log", "ab") as log:
                tb.node(n.name).popen(argv, stdout=log, stderr=log, stdin=None, start_new_session=True)
        tb.emit.progress("daemons", i + 1, len(jobs))
    deadline = time.monotonic() + ready_timeout
    for n, kind in jobs:
        if kind.ready_port is None:
            continue
        while tb.node(n.name).run(["sh", "-c", f"ss -Hltn 'sport = :{kind.ready_port}' | grep -q ."],
                                  timeout=10).returncode != 0:
            if time.monotonic() > deadline:
                raise BuildError(f"{n.name}: the {kind.name} daemons did not listen on port {kind.ready_port} "
                                 f"within {ready_timeout:.0f}s; see {log_dir}")
            time.sleep(0.1)
    tb.emit.done("daemons", f"daemons of {len(jobs)} nodes started")
