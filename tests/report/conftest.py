"""Report tests: writers and views from a hand-built report (no root); tools they need
(Graphviz's dot, Chromium) are installed by scripts/setup.sh, so in CI a missing one fails."""
from __future__ import annotations

import os
import shutil

import pytest

from testbed.report.model import RunReport
from testbed.topology.model import Topology
from tests.report.sample import sample_report, topology


def need(tool: str, package: str) -> str:
    """The tool's path; skip where it is missing on a developer's venv-only machine, fail in CI."""
    path = shutil.which(tool)
    if path is None:
        why = f"{tool} not installed (apt-get install {package}; scripts/setup.sh does)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return path


@pytest.fixture
def rep() -> RunReport:
    """A fresh sample report (tests may change it)."""
    return sample_report()


@pytest.fixture(scope="session")
def small() -> Topology:
    """The sample's own small alliance (do not mutate)."""
    return topology()


@pytest.fixture
def dot() -> str:
    return need("dot", "graphviz")
