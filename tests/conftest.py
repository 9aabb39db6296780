"""Shared fixtures for the fast unit tests (no root, nothing built)."""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from testbed.topology.loader import load
from testbed.topology.model import Topology

REPO = Path(__file__).resolve().parent.parent


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
