"""Slicing tests: unit tests need nothing; network tests ask for `network` (tests/conftest.py)."""

import pytest

from tests.slicing.fakenet import Net


@pytest.fixture
def net(minimal) -> Net:
    """The minimal topology's stateful plan on a fake network."""
    return Net(minimal)


@pytest.fixture
def stateless(minimal) -> Net:
    """The same policy as the stateless app's rules: what the stateful rules must do better than."""
    return Net(minimal, stateless=True)
