"""Docker-runtime tests: real networks with container nodes (root, OVS and a Docker engine).

Skipped only when the machine cannot run them; `.ci/run` (via scripts/setup.sh)
installs and starts the engine, so in CI they run.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import REPO, TESTBED, network_unavailable  # noqa: F401 - used by the tests here

HERE = Path(__file__).resolve().parent


def _why_not() -> str | None:
    if why := network_unavailable():
        return why
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


def labelled(run_id: str) -> list[str]:
    r = subprocess.run(["docker", "ps", "-a", "--filter", f"label=org.medalliance.testbed.run={run_id}",
                        "--format", "{{.Names}}"], capture_output=True, text=True, timeout=30)
    return r.stdout.split()


def cli(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess[str]:
    """tests.helpers.cli with more patience: container nodes start and stop slower."""
    return helpers.cli(*args, timeout=timeout, **kw)
