"""Probe tests: unit tests need nothing; integration tests reuse tests/integration's helpers."""
from __future__ import annotations

import os

import pytest

from tests.integration.conftest import MINIMAL, leftovers, state_dir  # noqa: F401 - fixtures re-exported

REPO_TOPOLOGIES = MINIMAL.parent


@pytest.fixture
def needs_root_and_ovs():
    from testbed import platform

    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    ok, detail = platform.ovs_running()
    if not ok:
        pytest.skip(detail)
