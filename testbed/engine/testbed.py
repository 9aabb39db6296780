"""`Testbed`: a running emulated network as a context manager.

    with Testbed.from_file("topologies/minimal.yaml") as tb:
        print(tb.node("emr").cmd("ip -br addr"))

Entering builds the network (Mininet nodes and links, OVS switches under a
controller process that installs the forwarding plan); leaving tears down
exactly what was built, whatever happened in between. Everything created is
recorded in the run's manifest first, so another process (`testbed down`,
`testbed clean`) can remove it too if this one dies.
"""
from __future__ import annotations

import contextlib
import os
import resource
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from testbed import platform
from testbed import naming
from testbed.engine import docker_node, links as impairments
from testbed.engine.controller import ControllerProcess, resolve_app, start_controller
from testbed.events import Emitter, EventSink
from testbed.openflow.layout import Layout, make_layout
from testbed.slicing.plan import controller_plan
from testbed.engine.procs import netns_inode, record
from testbed.engine.rundir import Manifest, NodeRecord, all_runs, process_start_time
from testbed.engine.teardown import teardown
from testbed.errors import BuildError, PlatformError, UsageError
from testbed.topology.loader import load
from testbed.topology.model import Topology

READY_TIMEOUT_S = 90.0
OFFLOADS = "tx off rx off tso off gso off gro off"


class NodeHandle:
    """A node of the running network, for running commands inside it."""

    def __init__(self, tb: "Testbed", name: str, mn_node: Any):
        self.tb, self.name, self._mn = tb, name, mn_node

    @property
    def ip(self) -> str:
        return str(self.tb.layout.ips[self.name].ip)

    @property
    def mac(self) -> str:
        return self.tb.layout.macs[self.name]

    @property
    def pid(self) -> int:
        return self._mn.pid

    def cmd(self, command: str) -> str:
        """Run a shell command in the node and return its output (blocking)."""
        return self._mn.cmd(command)

    def run(self, argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run argv in the node's namespaces without its shell; safe to call from threads."""
        return subprocess.run(self._argv(argv), capture_output=True, text=True, timeout=timeout)

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen:
        """Start a background process in the node; it is killed at teardown (netns scan)."""
        return subprocess.Popen(self._argv(argv), **kw)

    def _argv(self, argv: list[str]) -> list[str]:
        rec = self.tb.manifest.nodes.get(self.name) if self.tb.manifest else None
        if rec is not None and rec.runtime == "docker":
            return docker_node.enter_argv(self.pid, argv, self._mn.container.pid)  # cgroups too: limits apply
        return ["mnexec", "-a", str(self.pid), *argv]


class Testbed:
    __test__ = False  # a library class, not a pytest test class
    def __init__(self, topo: Topology, source: str = "<memory>", on_event: EventSink | None = None,
                 controller_app: str | None = None, ready_timeout: float = READY_TIMEOUT_S):
        self.topo = topo
        self.source = source
        self.emit = Emitter(on_event)
        self.controller_app = controller_app
        self.ready_timeout = ready_timeout
        self.layout: Layout | None = None
        self.manifest: Manifest | None = None
        self.net = None
        self.controller: ControllerProcess | None = None
        self.platform: platform.PlatformReport | None = None
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self._nodes: dict[str, Any] = {}
        self.link_handles: dict[str, Any] = {}

    @classmethod
    def from_file(cls, path: str | Path, **kw: Any) -> "Testbed":
        return cls(load(path), source=str(path), **kw)

    # -- context manager -----------------------------------------------------
    def __enter__(self) -> "Testbed":
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    @property
    def run_id(self) -> str:
        assert self.manifest is not None
        return self.manifest.run_id

    def node(self, name: str) -> NodeHandle:
        if name not in self._nodes:
            raise UsageError(f"no node named {name!r} in this testbed")
        return NodeHandle(self, name, self._nodes[name])

    # -- build ---------------------------------------------------------------
    def _preflight(self) -> None:
        if os.geteuid() != 0:
            raise PlatformError("building a network needs root (network namespaces, Open vSwitch)")
        ok, detail = platform.ovs_running()
        if not ok:
            raise PlatformError(detail)
        for tool in ("mnexec", "ethtool", "tc"):
            if not subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode == 0:
                raise PlatformError(f"{tool} not found; run `make setup`")
        if docker_node.docker_hosts(self.topo):
            docker_node.check_engine()
            self.emit.stage("images", "node images")
            spent = docker_node.ensure_images(docker_node.images_needed(self.topo), self.emit.info)
            self.timings["images_s"] = sum(spent.values())
            self.emit.done("images", ", ".join(f"{i} ready in {s:.1f}s" for i, s in spent.items()))

    def up(self) -> None:
        t0 = time.monotonic()
        self._preflight()
        taken = {m.run_id for m in all_runs()}
        rid = naming.new_run_id(taken)
        self.layout = make_layout(self.topo, rid)
        me = os.getpid()
        self.manifest = Manifest(run_id=rid, topology=os.path.abspath(self.source), name=self.topo.name,
                                 supervisor_pid=me, supervisor_start=process_start_time(me) or 0.0)
        self.manifest.datapath = platform.choose_datapath()
        self.manifest.impairment_backend = impairments.choose_backend()
        self.manifest.root_interfaces = self.layout.root_interfaces()
        self.manifest.wires = {impairments.link_key(ln.a, ln.b): self.layout.switch_ends(ln) for ln in self.layout.links}
        self.manifest.save()
        self.emit.info(f"run {rid}: datapath {self.manifest.datapath}, impairments {self.manifest.impairment_backend}")
        try:
            self._build()
        except BaseException:
            self.emit.warning("build failed; tearing down what was built")
            self.down()
            raise
        self.timings["up_s"] = time.monotonic() - t0

    def _write_hosts_file(self) -> Path:
        lay = self.layout
        lines = ["127.0.0.1 localhost"] + [f"{ip.ip} {name}" for name, ip in lay.ips.items()]
        path = self.manifest.dir / "hosts"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _build(self) -> None:
        """Stages in dependency order; each records what it creates before creating it."""
        from testbed.engine.mn import new_net

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
        hosts_file = self._write_hosts_file()
        self.net = new_net()
        self._start_controller()  # first: switches connect as soon as they exist
        self._add_nodes(hosts_file)
        impaired = self._add_links()
        self.emit.stage("configure", "addresses, offloads, name resolution")
        self.net.build()
        self._configure_hosts(hosts_file)
        self._configure_root_side()
        self.emit.done("configure")
        if impaired:
            self._start_impairments(impaired)
        self._start_switches()
        self.manifest.state = "up"
        self.manifest.save()

    def _start_controller(self) -> None:
        from mininet.node import RemoteController

        lay, m, topo = self.layout, self.manifest, self.topo
        plan = controller_plan(topo, lay)
        if topo.controller.remote:
            host, port = topo.controller.remote.rsplit(":", 1)
            ctrl_ip, ctrl_port = host, int(port)
            m.controller = {"remote": topo.controller.remote}
        else:
            app = resolve_app(self.controller_app or topo.controller.app, Path(self.source).parent,
                              sliced=bool(topo.slices))
            self.controller = start_controller(app, m.dir, plan)
            m.pids["controller"] = record(self.controller.proc.pid)
            m.controller = {"app": app, "port": self.controller.port, "log": str(self.controller.log_path)}
            ctrl_ip, ctrl_port = "127.0.0.1", self.controller.port
            m.save()
        self.net.addController(RemoteController("c0", ip=ctrl_ip, port=ctrl_port))

    def _add_nodes(self, hosts_file: Path) -> None:
        from testbed.engine.mn import TbSwitch

        lay, m, topo, net = self.layout, self.manifest, self.topo, self.net
        hosts = [n for n in topo.nodes if n.kind != "switch"]
        containers = self._start_containers(hosts_file)
        self.emit.stage("nodes", "starting node namespaces", total=len(hosts))
        for i, n in enumerate(hosts):
            c = containers.get(n.name)
            h = net.addHost(lay.internal[n.name], ip=str(lay.ips[n.name]), mac=lay.macs[n.name],
                            **docker_node.host_params(c))
            self._nodes[n.name] = h
            m.nodes[n.name] = NodeRecord(name=n.name, internal=h.name, kind=n.kind, site=n.site,
                                         ip=str(lay.ips[n.name].ip), mac=lay.macs[n.name], pid=h.pid,
                                         pid_start=process_start_time(h.pid), netns=netns_inode(h.pid),
                                         **docker_node.record_fields(c))
            m.save_throttled()
            self.emit.progress("nodes", i + 1, len(hosts))
        dp = "user" if m.datapath == "netdev" else "kernel"
        for n in topo.switches:
            sw = net.addSwitch(lay.internal[n.name], cls=TbSwitch, dpid=lay.dpids[n.name], datapath=dp,
                               protocols="OpenFlow13", failMode="secure", batch=True,
                               run_id=m.run_id, node_name=n.name)
            self._nodes[n.name] = sw
            m.bridges.append(sw.name)
            m.nodes[n.name] = NodeRecord(name=n.name, internal=sw.name, kind="switch", site=n.site,
                                         dpid=lay.dpids[n.name], pid=sw.pid, pid_start=process_start_time(sw.pid))
        m.save()
        self.emit.done("nodes", f"{len(hosts)} hosts, {len(topo.switches)} switches")

    def _add_links(self) -> list:
        """Create every link (a relay pair where impaired); returns the impaired ones."""
        lay, m = self.layout, self.manifest
        self.emit.stage("links", "creating links", total=len(lay.links))
        impaired = [ln for ln in lay.links if impairments.needs_impairment(ln)]
        for ln in impaired:
            if m.impairment_backend == "userspace":
                m.root_interfaces += list(impairments.relay_ends(m.run_id, ln.index))
        m.save()
        for ln in lay.links:
            self.net.addLink(self._nodes[ln.a], self._nodes[ln.b], port1=ln.port_a, port2=ln.port_b,
                        intfName1=ln.intf_a, intfName2=ln.intf_b, **self._link_kwargs(ln))
            self.emit.progress("links", ln.index + 1, len(lay.links))
        self.emit.done("links", f"{len(lay.links)} links")
        return impaired

    def _start_switches(self) -> None:
        """Start the bridges and wait until the controller confirmed every switch's rules."""
        lay = self.layout
        self.emit.stage("switches", "starting switches", total=len(lay.dpids))
        t_sw = time.monotonic()
        self.net.start()
        if self.controller is not None:
            dpids = set(lay.dpids.values())
            waited = self.controller.wait_ready(
                dpids, self.ready_timeout, lambda d, t: self.emit.progress("switches", d, t, "rules installed"))
            self.timings["rules_wait_s"] = waited
            self.timings.update(self.controller.install_times())
        self.timings["switches_s"] = time.monotonic() - t_sw
        self.emit.done("switches", f"{len(lay.dpids)} switches connected, rules installed")

    def _start_containers(self, hosts_file: Path) -> dict[str, Any]:
        """Start the docker nodes' containers in parallel, each recorded in the manifest first."""
        nodes = docker_node.docker_hosts(self.topo)
        if not nodes:
            return {}
        m, t0 = self.manifest, time.monotonic()
        specs = [docker_node.spec_for(self.topo, n, m.run_id, hosts_file, Path(self.source).parent) for n in nodes]
        m.containers += [s.name for s in specs]  # before `docker run`: teardown removes them by name
        m.save()
        self.emit.stage("containers", "starting containers", total=len(specs))
        done: list[Any] = []
        started = docker_node.start_containers(
            specs, lambda c: (done.append(c), self.emit.progress("containers", len(done), len(specs))))
        self.timings["containers_s"] = time.monotonic() - t0
        self.timings["container_run_avg_s"] = sum(c.seconds for c in started.values()) / len(started)
        self.emit.done("containers", f"{len(started)} containers in {self.timings['containers_s']:.1f}s")
        return started

    def _link_kwargs(self, ln) -> dict[str, Any]:
        """Mininet link class and parameters: HTB for rate, a relay pair where impaired."""
        from mininet.link import Link, TCIntf

        p, backend = ln.params, self.manifest.impairment_backend
        kw: dict[str, Any] = {"cls": Link}
        htb = p.bw is not None and not (backend == "netem" and impairments.needs_impairment(ln))
        if htb:
            kw.update(cls1=TCIntf, cls2=TCIntf, params1={"bw": p.bw / 1e6}, params2={"bw": p.bw / 1e6})
        if backend == "userspace" and impairments.needs_impairment(ln):
            kw.update(cls=impairments.RelayLink, relay_ends=impairments.relay_ends(self.run_id, ln.index))
        return kw

    def _start_impairments(self, links: list) -> None:
        m = self.manifest
        self.emit.stage("impairments", f"{m.impairment_backend} impairments", total=len(links))
        pids = {name: rec.pid if rec.kind != "switch" else None for name, rec in m.nodes.items()}
        # Relays start in parallel: each takes ~0.3 s to import and report ready.
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = {pool.submit(impairments.start, ln, m.impairment_backend, pids, m.dir / "links", m.run_id): ln
                       for ln in links}
            for i, fut in enumerate(as_completed(futures)):
                ln = futures[fut]
                handle, rec = fut.result()
                key = impairments.link_key(ln.a, ln.b)
                self.link_handles[key] = handle
                m.links[key] = rec
                if rec.get("relay_pid"):
                    m.pids[f"relay-{key}"] = record(rec["relay_pid"])
                m.save_throttled()
                self.emit.progress("impairments", i + 1, len(links))
        m.save()
        self.emit.done("impairments", f"{len(links)} links impaired ({m.impairment_backend})")

    def set_link(self, ref: str, items: list[str], direction: str = "both") -> dict:
        """Change a running link (`delay=20ms loss=1%`, `down`, `up`); returns its new settings."""
        return impairments.set_link(self.manifest, ref, items, direction)

    def _configure_hosts(self, hosts_file: Path) -> None:
        """Per host, one shell round trip: offloads off, MTU, private /etc/hosts, no IPv6 chatter."""
        mtus: dict[str, int] = {}
        for ln in self.layout.links:
            if ln.params.mtu:
                mtus[ln.intf_a] = mtus[ln.intf_b] = ln.params.mtu
        for name, h in self._nodes.items():
            if self.topo.node(name).kind == "switch":
                continue
            intf = h.defaultIntf().name
            script = [
                f"ethtool -K {intf} {OFFLOADS} >/dev/null 2>&1",
                "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
                f"mount --make-rprivate / && mount --bind {shlex.quote(str(hosts_file))} /etc/hosts",
            ]
            if docker_node.is_docker_host(h):
                script = script[:1]  # hosts file and sysctls were given to `docker run`
            if intf in mtus:
                script.append(f"ip link set dev {intf} mtu {mtus[intf]}")
            h.cmd("; ".join(script))

    def _configure_root_side(self) -> None:
        """Switch-side veth ends: offloads off (userspace datapath needs it) and MTU, in one shell."""
        cmds = []
        for ln in self.layout.links:
            for end, intf in ((ln.a, ln.intf_a), (ln.b, ln.intf_b)):
                if end in self.layout.dpids:
                    cmds.append(f"ethtool -K {intf} {OFFLOADS} >/dev/null 2>&1")
                    if ln.params.mtu:
                        cmds.append(f"ip link set dev {intf} mtu {ln.params.mtu}")
        if cmds:
            r = subprocess.run(["sh", "-c", "; ".join(cmds) + "; true"], capture_output=True, text=True)
            if r.returncode != 0:
                raise BuildError(f"configuring switch ports failed: {r.stderr.strip()}")

    # -- controller ----------------------------------------------------------
    def restart_controller(self, timeout: float | None = None) -> float:
        """Stop the run's controller (if still running), start the same app on the same port with
        the run's current plan, and wait until every switch has its rules again. Meanwhile the
        switches (fail_mode=secure) keep forwarding by the rules they hold. Returns seconds waited."""
        if self.controller is None:
            raise UsageError("this run uses a remote controller; restart it yourself")
        old = self.controller
        old.stop()
        self.controller = start_controller(self.manifest.controller["app"], self.manifest.dir, None, port=old.port)
        self.manifest.pids["controller"] = record(self.controller.proc.pid)
        self.manifest.save()
        waited = self.controller.wait_ready(set(self.layout.dpids.values()), timeout or self.ready_timeout)
        self.timings["controller_restart_s"] = waited
        return waited

    # -- teardown ------------------------------------------------------------
    def down(self) -> None:
        """Remove everything this run created. Safe to call twice and after a failed build."""
        if self.manifest is None or self.manifest.state == "down":
            return
        t0 = time.monotonic()
        if self.controller is not None and "packet_in" in (st := self.controller.status()):
            self.timings["controller_packet_in"] = st["packet_in"]
        self.manifest.state = "stopping"
        self.manifest.save()
        self._close_mininet()
        teardown(self.manifest, self.emit)
        self.timings["down_s"] = time.monotonic() - t0

    def _close_mininet(self) -> None:
        """Drop our ends of the node shells' ptys; the processes are killed by teardown()."""
        for h in self._nodes.values():
            with contextlib.suppress(OSError, AttributeError):
                h.stdin.close()  # the pty master (Mininet reads and writes through it)
            if isinstance(getattr(h, "slave", None), int):
                with contextlib.suppress(OSError):
                    os.close(h.slave)
