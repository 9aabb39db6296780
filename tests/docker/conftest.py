"""Docker-runtime tests: real networks with container nodes (root, OVS and a Docker engine).

Skipped only when the machine cannot run them; `.ci/run` (via scripts/setup.sh)
installs and starts the engine, so in CI they run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import platform

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TESTBED = [sys.executable, "-m", "testbed.cli.main"]


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    ok, detail = platform.ovs_running()
    if not ok:
        return detail
    if shutil.which("docker") is None:
        return "docker not installed (scripts/docker-engine.sh)"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return "Docker engine not running (scripts/docker-engine.sh)"
    return None


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/docker" in str(item.fspath):
            item.add_marker(pytest.mark.docker)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _needs_engine():
    why = _why_not()
    if why:
        pytest.skip(why)


@pytest.fixture
def state_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("TESTBED_STATE_DIR", str(d))
    return d


def labelled(run_id: str) -> list[str]:
    r = subprocess.run(["docker", "ps", "-a", "--filter", f"label=org.medalliance.testbed.run={run_id}",
                        "--format", "{{.Names}}"], capture_output=True, text=True, timeout=30)
    return r.stdout.split()


def cli(*args: str, check: bool = True, timeout: float = 300, **kw) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*TESTBED, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"testbed {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r
