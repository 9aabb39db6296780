"""Integration fixtures: real networks, so root and a running Open vSwitch are required.

Each test gets its own state directory (TESTBED_STATE_DIR), so runs of other
users or tests are never seen, and a leftovers() helper that looks for anything
carrying the run id: OVS bridges tagged with it, interfaces named after it,
processes in its namespaces, its run directory.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import platform

REPO = Path(__file__).resolve().parents[2]
MINIMAL = REPO / "topologies" / "minimal.yaml"
TESTBED = [sys.executable, "-m", "testbed.cli.main"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _needs_root_and_ovs():
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    ok, detail = platform.ovs_running()
    if not ok:
        pytest.skip(detail)


@pytest.fixture
def state_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("TESTBED_STATE_DIR", str(d))
    return d


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
