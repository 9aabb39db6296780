"""Finding runs from another shell (down/status/exec) by their manifests."""
from __future__ import annotations

import os
import signal
import time

from testbed.engine.rundir import Manifest, all_runs, is_alive, live
from testbed.engine.teardown import teardown
from testbed.errors import RunNotFound


def pick_run(run_id: str | None) -> Manifest:
    """The run named, or the only live run; a clear error otherwise."""
    runs = all_runs()
    if run_id:
        for m in runs:
            if m.run_id == run_id:
                return m
        raise RunNotFound(f"no run with id {run_id!r} (see `testbed status`)")
    alive = [m for m in runs if live(m)]
    if not alive:
        orphans = [m.run_id for m in runs]
        if orphans:  # what is left of runs whose owner died (killed, crashed): not running, not gone either
            raise RunNotFound(f"no testbed is running; run(s) {', '.join(orphans)} lost their owner process and "
                              "left their network behind: `testbed clean` removes it")
        raise RunNotFound("no testbed is running (start one with `testbed up FILE`)")
    if len(alive) > 1:
        ids = ", ".join(f"{m.run_id} ({m.name})" for m in alive)
        raise RunNotFound(f"several testbeds are running: {ids}; choose one with --run")
    return alive[0]


def stop_run(m: Manifest, timeout: float = 90.0) -> str:
    """Ask the owning process to tear down (SIGTERM); if it is gone or stuck, do it ourselves."""
    if live(m):
        os.kill(m.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_alive(m.supervisor_pid, m.supervisor_start):
            time.sleep(0.1)
        if not is_alive(m.supervisor_pid, m.supervisor_start):
            if not m.dir.exists():
                return "stopped by its owner"
        else:
            os.kill(m.supervisor_pid, signal.SIGKILL)
    teardown(m)
    return "removed from its manifest"


def node_handle(m: Manifest, name: str):
    """A running node as the checks use one (its address, popen inside it), from the manifest alone."""
    import subprocess
    from types import SimpleNamespace

    from testbed.engine import runtimes
    from testbed.errors import UsageError

    rec = m.nodes.get(name)
    if rec is None:
        raise UsageError(f"run {m.run_id} has no node {name!r}")
    enter = runtimes.new(rec.runtime).enter_argv
    return SimpleNamespace(ip=rec.ip, popen=lambda argv, **kw: subprocess.Popen(enter(rec, list(argv)), **kw),
                           run=lambda argv, timeout=20: subprocess.run(enter(rec, list(argv)), capture_output=True,
                                                                       text=True, timeout=timeout))


def attach(m: Manifest):
    """A running testbed as the checks use one (topology, layout, 5G plan, nodes), from its manifest alone:
    what lets `testbed verify` work on a testbed another process owns."""
    from types import SimpleNamespace

    from testbed.openflow.layout import make_layout
    from testbed.ran.network import prepare
    from testbed.topology.loader import load

    topo, ran = prepare(load(m.topology), m.run_id)
    return SimpleNamespace(topo=topo, ran=ran, layout=make_layout(topo, m.run_id), manifest=m,
                           node=lambda name: node_handle(m, name), controller=None)
