"""Integration tests build real networks: every test here gets the `network` fixture."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _network(network) -> None:
    """Skip (with the reason) where root or Open vSwitch is missing."""
