"""Everything of one run still on the machine, looked up by the run's own identifiers.

tests.helpers.leftovers covers bridges, interfaces, node shells, controller and
relay processes, containers and the run directory. A killed run needs more:
OVS ports and interfaces of the run on any bridge, processes still in its network
namespaces or with namespace files mounted, every process the run had started
(its descendants, snapshotted at the kill), and mounts that name its run
directory or its containers. `Facts` is what must be read before `clean`
removes the manifest that holds it.
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from testbed.engine.procs import pids_in_netns
from testbed.engine.rundir import is_alive, process_start_time

from tests.helpers import leftovers


@dataclass
class Facts:
    run_id: str
    run_dir: str
    netns: set[int] = field(default_factory=set)
    container_ids: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, run_dir: Path) -> "Facts":
        """From the run's manifest (whatever of it was written) and the Docker labels."""
        rid = run_dir.name
        facts = cls(rid, str(run_dir))
        try:
            m = json.loads((run_dir / "manifest.json").read_text())
        except (OSError, ValueError):
            m = {}
        facts.netns = {n["netns"] for n in m.get("nodes", {}).values() if n.get("netns")}
        r = subprocess.run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label=org.medalliance.testbed.run={rid}"],
                           capture_output=True, text=True, timeout=60)
        facts.container_ids = set(r.stdout.split())
        return facts


def children_map() -> dict[int, list[int]]:
    """ppid -> pids, from /proc."""
    out: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            out.setdefault(ppid, []).append(int(d.name))
    return out


def argv_of(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def descendants(pid: int) -> list[tuple[int, float, list[str]]]:
    """(pid, start, argv) of every process below `pid`."""
    kids, out, todo = children_map(), [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            start = process_start_time(c)
            if start is not None:
                out.append((c, start, argv_of(c)))
                todo.append(c)
    return out


def _ovs_names(table: str) -> list[str]:
    r = subprocess.run(["ovs-vsctl", "--bare", "--columns=name", "list", table], capture_output=True, text=True,
                       timeout=30)
    return r.stdout.split()


def residue(facts: Facts, state: Path, started: list[tuple[int, float, list[str]]], wait: float = 10.0) -> list[str]:
    """What of the run is still here (empty: nothing). Processes it had started get `wait` s to end
    on their own (a `docker run` or `ovs-vsctl` client finishing its call)."""
    rid = facts.run_id
    deadline = time.monotonic() + wait
    while True:
        alive = [(p, argv) for p, s, argv in started if is_alive(p, s)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    found = leftovers(rid, state)
    found += [f"process {p} started by the run: {' '.join(argv)[:160]}" for p, argv in alive]
    prefix = f"tb{rid}"
    found += [f"OVS {t.lower()} {n}" for t in ("Port", "Interface") for n in _ovs_names(t) if n.startswith(prefix)]
    found += [f"process {p} in the run's network namespace" for p in pids_in_netns(facts.netns)]
    mounts = Path("/proc/1/mountinfo").read_text()
    for line in mounts.splitlines():
        if facts.run_dir in line or any(cid in line for cid in facts.container_ids):
            found.append(f"mount {line.split()[4]}")
        elif "nsfs" in line and any(f"net:[{ino}]" in line for ino in facts.netns):
            found.append(f"namespace mount {line.split()[4]}")
    return found
