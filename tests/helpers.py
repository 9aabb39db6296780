"""Helpers for tests that build real networks (imported by every network test package).

`leftovers(run_id, state)` lists anything of a run still on the machine: OVS
bridges tagged with its id, interfaces named after it, node shells, its run
directory. `cli(...)` runs the `testbed` command as a user would.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MINIMAL = REPO / "topologies" / "minimal.yaml"
TESTBED = [sys.executable, "-m", "testbed.cli.main"]


def network_unavailable() -> str | None:
    """Why real-network tests cannot run here (None: they can)."""
    from testbed import platform

    if os.geteuid() != 0:
        return "network tests need root"
    ok, detail = platform.ovs_running()
    return None if ok else detail


def leftovers(run_id: str, state: Path) -> list[str]:
    """Everything of run `run_id` still present on the machine (empty list = clean)."""
    found = []
    r = subprocess.run(["ovs-vsctl", "--bare", "--columns=name", "find", "Bridge",
                        f"external_ids:testbed-run={run_id}"], capture_output=True, text=True)
    found += [f"bridge {b}" for b in r.stdout.split()]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"interface {ln.split(':')[1].strip()}" for ln in links.splitlines()
              if ln.split(":")[1].strip().startswith(f"tb{run_id}")]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    found += [f"process {ln.strip()}" for ln in ps.splitlines() if f"mininet:tb{run_id}" in ln]
    if (state / run_id).exists():
        found.append(f"run dir {state / run_id}")
    return found


def cli(*args: str, check: bool = True, timeout: float = 180, **kw) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*TESTBED, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"testbed {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r
