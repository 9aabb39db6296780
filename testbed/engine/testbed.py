"""`Testbed`: a running emulated network as a context manager.

    with Testbed.from_file("topologies/minimal.yaml") as tb:
        print(tb.node("emr").cmd("ip -br addr"))

Entering builds the network (build.py, stage by stage: Mininet nodes through
their runtimes, links, OVS switches under a controller process that installs
the forwarding plan); leaving tears down exactly what was built, whatever
happened in between. Everything created is recorded in the run's manifest
first, so another process (`testbed down`, `testbed clean`) can remove it too
if this one dies.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from testbed import naming, platform
from testbed.engine import build, links
from testbed.engine.controller import ControllerProcess, start_controller
from testbed.engine.node import NodeHandle
from testbed.engine.procs import record
from testbed.engine.rundir import Manifest, all_runs, process_start_time
from testbed.engine.runtimes import Runtime
from testbed.engine.teardown import teardown
from testbed.errors import UsageError
from testbed.events import Emitter, EventSink
from testbed.impair.backends import choose_backend
from testbed.openflow.layout import Layout, make_layout
from testbed.ran.network import prepare as prepare_ran
from testbed.ran.plan import RanPlan
from testbed.topology.loader import load
from testbed.topology.model import Topology

READY_TIMEOUT_S = 90.0


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
        self.timings: dict[str, float] = {}
        self.verification: dict = {}  # testbed verify's summary when the run proved its tables (runner.run_verify)
        self.warnings: list[str] = []
        self.runtimes: dict[str, Runtime] = {}  # runtime name -> the object that started this run's nodes
        self.node_runtime: dict[str, str] = {}  # host -> runtime name
        self.mn_nodes: dict[str, Any] = {}  # topology name -> Mininet node
        self.link_handles: dict[str, Any] = {}
        self.measurements: list[dict[str, Any]] = []  # raw samples of the workloads run on this testbed
        self.ran: RanPlan | None = None  # the 5G plan, when the topology has a 5G path (set by up())

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

    # -- nodes -----------------------------------------------------------------
    def node(self, name: str) -> NodeHandle:
        if name not in self.mn_nodes or name not in self.node_runtime:
            raise UsageError(f"no host named {name!r} in this testbed")
        return NodeHandle(self, name, self.mn_nodes[name])

    def mn_node(self, name: str) -> Any:
        """The Mininet object of a node (host or switch), for the build stages."""
        return self.mn_nodes[name]

    def host_names(self) -> list[str]:
        return [n.name for n in self.topo.hosts if n.name in self.mn_nodes]

    def runtime_of(self, name: str) -> Runtime:
        return self.runtimes[self.node_runtime[name]]

    # -- build ---------------------------------------------------------------
    def up(self) -> None:
        t0 = time.monotonic()
        rid = naming.new_run_id({m.run_id for m in all_runs()})
        # the 5G path's own nodes (the core, an implicit UPF) join the topology before anything is planned
        self.topo, self.ran = prepare_ran(self.topo, rid)
        tso = build.preflight(self)
        self.layout = make_layout(self.topo, rid)
        me = os.getpid()
        m = self.manifest = Manifest(run_id=rid, topology=os.path.abspath(self.source), name=self.topo.name,
                                     supervisor_pid=me, supervisor_start=process_start_time(me) or 0.0)
        m.datapath = platform.choose_datapath()
        m.tso = tso
        m.impairment_backend = choose_backend()
        m.root_interfaces = self.layout.root_interfaces()
        m.wires = {links.link_key(ln.a, ln.b): self.layout.switch_ends(ln) for ln in self.layout.links}
        m.save()
        self.emit.info(f"run {rid}: datapath {m.datapath}{' with TSO' if m.tso else ''}, "
                       f"impairments {m.impairment_backend}")
        try:
            build.build(self)
        except BaseException:
            self.emit.warning("build failed; tearing down what was built")
            self.down()
            raise
        self.timings["up_s"] = time.monotonic() - t0

    # -- while running ---------------------------------------------------------
    def set_link(self, ref: str, items: list[str], direction: str = "both") -> dict:
        """Change a running link (`delay=20ms loss=1%`, `down`, `up`); returns its new settings."""
        return links.set_link(self.manifest, ref, items, direction, self.layout)

    def veth(self, ref: str) -> list[str]:
        """Make a switch-to-switch link a veth pair if it is made of patch ports (it keeps passing frames);
        its root-namespace interfaces, to capture on."""
        return links.as_veth(self.manifest, ref)[1]

    def restart_controller(self, timeout: float | None = None, wait: bool = True) -> float | None:
        """Stop the run's controller (if still running), start the same app on the same port with
        the run's current plan, and (with `wait`) wait until every switch has its rules again. Meanwhile
        the switches (fail_mode=secure) keep forwarding by the rules they hold. Returns seconds waited
        (None without `wait`: `await_controller` does that part, from any thread)."""
        if self.controller is None:
            raise UsageError("this run uses a remote controller; restart it yourself")
        old = self.controller
        old.stop()
        self.controller = start_controller(self.manifest.controller["app"], self.manifest.dir, None, port=old.port)
        self.manifest.pids["controller"] = record(self.controller.proc.pid)
        self.manifest.save()
        return self.await_controller(timeout) if wait else None

    def await_controller(self, timeout: float | None = None) -> float:
        """Wait until the (restarted) controller confirmed every switch's rules; returns seconds waited.
        Reads only the controller's status file: safe beside another thread changing links."""
        waited = self.controller.wait_ready(set(self.layout.dpids.values()), timeout or self.ready_timeout)
        self.timings["controller_restart_s"] = waited
        return waited

    # -- teardown ------------------------------------------------------------
    def down(self) -> None:
        """Remove everything this run created. Safe to call twice and after a failed build."""
        if self.manifest is None or self.manifest.state == "down":
            return
        t0 = time.monotonic()
        self._merge_recorded()
        if self.controller is not None and "packet_in" in (st := self.controller.status()):
            self.timings["controller_packet_in"] = st["packet_in"]
        self.manifest.state = "stopping"
        self.manifest.save()
        self._close_mininet()
        teardown(self.manifest, self.emit)
        self.timings["down_s"] = time.monotonic() - t0

    def _merge_recorded(self) -> None:
        """Take in what other processes recorded in the run's manifest meanwhile (`testbed link set` from
        another shell splices a relay in: its interfaces and PID), before this process saves its own copy."""
        try:
            disk = Manifest.load(self.manifest.dir)
        except Exception:  # noqa: BLE001 - unreadable or gone: our own record is all there is
            return
        m = self.manifest
        m.root_interfaces += [i for i in disk.root_interfaces if i not in m.root_interfaces]
        for key, value in disk.pids.items():
            m.pids.setdefault(key, value)
        for key, value in disk.links.items():
            m.links.setdefault(key, value)

    def _close_mininet(self) -> None:
        """Drop our ends of the node shells' ptys; the processes are killed by teardown()."""
        for h in self.mn_nodes.values():
            with contextlib.suppress(OSError, AttributeError):
                h.stdin.close()  # the pty master (Mininet reads and writes through it)
            if isinstance(getattr(h, "slave", None), int):
                with contextlib.suppress(OSError):
                    os.close(h.slave)
