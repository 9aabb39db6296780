"""Fixtures for impairment tests: a throwaway two-namespace link (tests/tools/lab.py)
and a relay on it. Teardown always removes exactly what the fixture created."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from testbed.impair import Impairment, RelayHandle, start_relay
from tests.tools.lab import NetPair


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    for tool in ("ip", "ethtool", "ping"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool}")


@pytest.fixture
def netpair() -> Iterator[NetPair]:
    require_root()
    pair = NetPair.create()
    try:
        yield pair
    finally:
        pair.destroy()


@pytest.fixture
def relay(netpair: NetPair) -> Iterator[RelayHandle]:
    """A no-op relay on netpair; tests change it live through the handle."""
    workdir = Path(tempfile.mkdtemp(prefix="tbimp"))  # short: unix socket paths are limited
    handle = start_relay(netpair.if_a, netpair.if_b, Impairment(), Impairment(),
                         workdir / "relay.sock", workdir / "relay.log")
    try:
        netpair.ping(3, 0.05)  # ARP warm-up so measurements start clean
        yield handle
    finally:
        handle.stop()
        shutil.rmtree(workdir, ignore_errors=True)
