"""What a soak watches after every run: the shared daemons' open files and memory, the run's own processes
and containers, files under the state directory, mounts naming it.

The machine is shared (other test processes, other developers' runs), so
machine-wide totals are reported but not judged; what is judged is either the
testbed's own (processes carrying this soak's TESTBED_STATE_DIR, containers of
its runs, files in its state directory) or the long-lived daemons every run
talks to (ovs-vswitchd, ovsdb-server, dockerd, containerd), where a leak per run
would pile up.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

DAEMONS = ("ovs-vswitchd", "ovsdb-server", "dockerd", "containerd")


def _pids_named(name: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == name:
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _with_env(key: str, value: str) -> list[int]:
    """PIDs whose environment has key=value (every process a run started inherits its state directory)."""
    want = f"{key}={value}".encode()
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if want in (d / "environ").read_bytes().split(b"\0"):
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def sample(state: Path, run_ids: set[str]) -> dict[str, int]:
    """One reading. Keys ending in _fds / _rss_kb are per daemon (summed over its processes)."""
    g: dict[str, int] = {}
    for name in DAEMONS:
        pids = _pids_named(name)
        g[f"{name}_fds"] = sum(_fds(p) for p in pids)
        g[f"{name}_rss_kb"] = sum(_rss_kb(p) for p in pids)
    g.update(ovs_objects())
    ours = _with_env("TESTBED_STATE_DIR", str(state))
    g["run_processes"] = len(ours)
    g["run_process_fds"] = sum(_fds(p) for p in ours)
    g["state_files"] = sum(len(files) + len(dirs) for _, dirs, files in os.walk(state)) if state.exists() else 0
    r = subprocess.run(["docker", "ps", "-a", "--filter", "label=org.medalliance.testbed.run", "--format",
                        '{{.Label "org.medalliance.testbed.run"}}'], capture_output=True, text=True, timeout=60)
    g["run_containers"] = sum(1 for rid in r.stdout.split() if rid in run_ids)
    g["state_mounts"] = sum(str(state) in ln for ln in Path("/proc/1/mountinfo").read_text().splitlines())
    # machine-wide, reported only
    g["machine_processes"] = sum(1 for d in Path("/proc").iterdir() if d.name.isdigit())
    g["machine_open_files"] = int(Path("/proc/sys/fs/file-nr").read_text().split()[0])
    g["machine_mem_available_kb"] = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                                         if ln.startswith("MemAvailable:"))
    g["machine_mounts"] = len(Path("/proc/1/mountinfo").read_text().splitlines())
    return g


def _counts(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"([\w-]+):(\d+)", text)}


def ovs_objects() -> dict[str, int]:
    """What Open vSwitch holds, counted by itself (`memory/show`): database cells, ports, rules, handlers.
    Between runs a run leaves none of these behind, whatever the daemons' RSS (which other users' larger
    networks on a shared machine raise, and the allocator rarely gives back) does."""
    g: dict[str, int] = {}
    for target, prefix in (("ovs-vswitchd", "ovs_"), ("ovsdb-server", "ovsdb_")):
        r = subprocess.run(["ovs-appctl", "-t", target, "memory/show"], capture_output=True, text=True, timeout=30)
        g.update({prefix + k: v for k, v in _counts(r.stdout).items()})
    r = subprocess.run(["ovs-appctl", "dpctl/dump-conntrack"], capture_output=True, text=True, timeout=30)
    g["ovs_conntrack_entries"] = len(r.stdout.splitlines()) if r.returncode == 0 else 0
    return g


def growth(readings: list[dict[str, int]], skip: int = 1) -> dict[str, int]:
    """Last reading minus the first after `skip` warm-up runs, per gauge."""
    base, last = readings[min(skip, len(readings) - 1)], readings[-1]
    return {k: last[k] - base.get(k, 0) for k in last}
