"""Fixtures for slicing tests; the integration ones come from tests/integration (see slicing_helpers)."""
from __future__ import annotations

import os

import pytest
from slicing_helpers import state_dir  # noqa: F401 - re-exported fixture

from testbed import platform


@pytest.fixture
def needs_network():
    """Integration tests of this directory ask for this (the unit tests here need no root)."""
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    ok, detail = platform.ovs_running()
    if not ok:
        pytest.skip(detail)
