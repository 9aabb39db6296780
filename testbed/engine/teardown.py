"""Remove exactly what one run created, from its manifest alone.

The same code serves a normal end, an exception, a signal, `testbed down` for a
run whose process died, and `testbed clean`: it needs no live Mininet objects,
only the manifest (bridges, interfaces, PIDs, namespace inodes, containers).
Every step tolerates things that are already gone, so it can run twice.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess

from testbed.engine import runtimes
from testbed.events import Emitter
from testbed.engine.ovs import flush_conntrack
from testbed.engine.ownership import helpers_of
from testbed.engine.procs import kill_verified, pids_in_netns
from testbed.engine.rundir import Manifest
from testbed.platform import expedited_rcu
from testbed.slicing.conntrack import ct_zone


def _run(cmd: list[str], stdin: str | None = None) -> None:
    subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)


def bridges_of_run(run_id: str) -> list[str]:
    """OVS bridges tagged external_ids:testbed-run=RUN_ID (survive a crashed manifest)."""
    r = subprocess.run(["ovs-vsctl", "--timeout=5", "--bare", "--columns=name", "find", "Bridge",
                        f"external_ids:testbed-run={run_id}"], capture_output=True, text=True, timeout=10)
    return [b for b in r.stdout.split() if b]


def delete_bridges(bridges: list[str]) -> None:
    """Delete OVS bridges (--no-wait: the ovsdb rows go at once; ovs-vswitchd releases the ports on its own
    time; the userspace datapath's tap devices go with the run's other interfaces, `delete_interfaces`)."""
    if not bridges:
        return
    args = ["ovs-vsctl", "--timeout=20", "--no-wait"]
    for b in bridges:
        args += ["--", "--if-exists", "del-br", b]
    _run(args)


def vswitchd_barrier(m: Manifest, timeout: int = 300) -> None:
    """Return once ovs-vswitchd has let go of the run's bridges and ports: it adds a bridge only after
    its earlier work is done (its cur_cfg is bumped before the ports are released, so a plain transaction
    would return too soon). The probe bridge carries the run's tag, so a crash here leaves it to `clean`."""
    probe = f"tb{m.run_id}bar"
    dp = "netdev" if m.datapath == "netdev" else "system"
    try:
        subprocess.run(["ovs-vsctl", f"--timeout={timeout}", "--", "--may-exist", "add-br", probe, "--", "set",
                        "bridge", probe, f"datapath_type={dp}", f"external_ids:testbed-run={m.run_id}"],
                       capture_output=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        pass  # a daemon that stays busy that long is not this run's to wait for
    delete_bridges([probe])
    delete_interfaces([probe], m.run_id)


GROUP_BASE = 0x54420000  # "TB": a run's interfaces are put in group GROUP_BASE + its 16-bit run id to go


def delete_interfaces(names: list[str], run_id: str) -> None:
    """Delete root-namespace interfaces of this run, given by exact name, in one kernel batch.

    `ip link del dev X` pays a network-wide grace period per device (about 19 ms each here: 3.8 s for
    200 veth pairs); deleting a link group unregisters all its devices at once (0.07 s for the same).
    So the named interfaces still present are put in the run's own group (GROUP_BASE + run id), and
    the group is deleted only if it holds nothing else (then one by one, as before)."""
    present = _existing(dict.fromkeys(names))
    if not present:
        return
    group = str(GROUP_BASE + int(run_id, 16)) if re.fullmatch(r"[0-9a-f]{1,4}", run_id) else None
    if group is not None:
        _run(["ip", "-force", "-batch", "-"], stdin="".join(f"link set dev {i} group {group}\n" for i in present))
        listed = subprocess.run(["ip", "-o", "link", "show", "group", group], capture_output=True, text=True,
                                timeout=30).stdout
        members = {line.split(":")[1].strip().split("@")[0] for line in listed.splitlines() if ":" in line}
        if members and members <= set(present):
            _run(["ip", "link", "del", "group", group])
    left = _existing(present)
    if left:
        _run(["ip", "-force", "-batch", "-"], stdin="".join(f"link del dev {i}\n" for i in left))


def _existing(names) -> list[str]:
    return [i for i in names if os.path.exists(f"/sys/class/net/{i}")]


def end_node_programs(m: Manifest) -> None:
    """End every process inside the run's nodes but the node shells: servers started by workloads, probes,
    the workloads' own programs (an interrupted run does this before its teardown, so its workloads return)."""
    inodes = {n.netns for n in m.nodes.values() if getattr(n, "netns", None)}
    shells = {n.pid for n in m.nodes.values() if n.pid}
    kill_verified([(p, None) for p in pids_in_netns(inodes) if p not in shells], grace=1.0)


def teardown(m: Manifest, emit: Emitter | None = None, remove_dir: bool = True) -> None:
    emit = emit or Emitter(None)
    emit.stage("teardown", f"removing run {m.run_id}")
    # 1. Controller and helper processes first, so nothing reacts to the network vanishing: the recorded
    # ones, and any that names this run's directory (started, then the run was killed before recording it).
    recorded = [(int(p), s) for p, s in m.pids.values()]
    unrecorded = [(p, None) for p in helpers_of(str(m.dir)) if p not in {r for r, _ in recorded}]
    kill_verified(recorded + unrecorded)
    # 2. Every process inside the run's namespaces (servers started by workloads, probes).
    end_node_programs(m)
    # 3. What the node runtimes made for this run (containers: by recorded name and by run label).
    for rt in runtimes.all_runtimes():
        rt.teardown(m)
    # 4. The run's connection-tracker entries (its zone): the tracker belongs to the datapath, which
    # outlives the run while any other bridge of its type exists. Before the bridges go, while
    # ovs-vswitchd has nothing else to do (after, the request waits behind their removal).
    bridges = sorted(set(m.bridges) | set(bridges_of_run(m.run_id)) if shutil.which("ovs-vsctl") else set(m.bridges))
    if bridges and shutil.which("ovs-appctl"):
        flush_conntrack(ct_zone(m.run_id))
    # 5-8 run with the kernel's RCU grace periods expedited: each port ovs-vswitchd releases, and each
    # namespace that goes, waits for one (platform.expedited_rcu: 22 s -> 3.8 s for 1,500 ports).
    with expedited_rcu():
        # 5. Root-namespace interfaces (switch ports, relay ends, the userspace bridges' taps): one kernel
        # batch, before the bridges go: ovs-vswitchd then releases ports whose devices are already gone,
        # which costs it less than closing them itself (100 bridges of 3 ports: 2.6 s against 4.5 s).
        delete_interfaces([*m.root_interfaces, *bridges], m.run_id)
        # 6. Bridges: from the manifest and from OVS itself (tagged with our run id).
        delete_bridges(bridges)
        # 7. Node shells last: their namespaces (and any veth still inside) vanish with them.
        # Interactive bash ignores SIGTERM; SIGHUP is what ends it (as Mininet does).
        shells = [(n.pid, n.pid_start) for n in m.nodes.values() if n.pid]
        kill_verified(shells, grace=2.0, group=True, sig=signal.SIGHUP)
        # 8. Wait until ovs-vswitchd has let go of the bridges' ports (in its one main thread, about 2.5 ms per
        # port here; 15 with normal grace periods): the run is gone when this returns, and the next one does
        # not stall behind it.
        if bridges and shutil.which("ovs-vsctl"):
            vswitchd_barrier(m)
    m.state = "down"
    if remove_dir:
        shutil.rmtree(m.dir, ignore_errors=True)
    else:
        m.save()
    emit.done("teardown", f"run {m.run_id} removed")
