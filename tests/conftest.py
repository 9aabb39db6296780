"""Shared fixtures for the fast unit tests (no root, nothing built)."""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from testbed.topology.loader import load
from testbed.topology.model import Topology

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser) -> None:
    parser.addoption("--long", action="store_true",
                     help="also run the tests marked `long` (make test-long); without it they are deselected")


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `long` take many minutes: `make test` (CI) leaves them out, `--long` runs them."""
    if config.getoption("--long"):
        return
    keep = [i for i in items if i.get_closest_marker("long") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("long") is not None])
        items[:] = keep


@pytest.fixture(scope="session")
def minimal_topology_path() -> Path:
    return REPO / "topologies" / "minimal.yaml"


@pytest.fixture(scope="session")
def reference() -> Topology:
    """The Xiangtan alliance topology, parsed once (ruamel is slow on 400 lines); do not mutate."""
    return load(REPO / "topologies" / "xiangtan-alliance.yaml")


@pytest.fixture(scope="session")
def minimal() -> Topology:
    """topologies/minimal.yaml, parsed once; do not mutate."""
    return load(REPO / "topologies" / "minimal.yaml")


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[..., Path]:
    """Write (dedented) YAML text to a file under tmp_path and return its path."""

    def write(text: str, name: str = "topo.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def network() -> None:
    """Requested by tests that build real networks: skips where that cannot work."""
    from tests.helpers import network_unavailable

    if why := network_unavailable():
        pytest.skip(why)


@pytest.fixture
def state_dir(tmp_path, monkeypatch) -> Path:
    """A private TESTBED_STATE_DIR: the test sees only its own runs, and so does `testbed clean`."""
    d = tmp_path / "state"
    monkeypatch.setenv("TESTBED_STATE_DIR", str(d))
    return d


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz tests' volume (files and argument sets tried, seconds), when any ran."""
    import sys

    fuzzing = sys.modules.get("tests.fuzzing")
    if fuzzing is not None and fuzzing.REPORTS:
        terminalreporter.section("fuzz volume")
        for line in fuzzing.REPORTS:
            terminalreporter.write_line(line)
