"""Robustness of the testbed itself: SIGKILL at random moments, soak, slice churn under load, controller kill.

Every test here builds real networks with a container node, so it needs root,
Open vSwitch and a Docker engine, as tests/docker (whose skip fixture applies
here too). The long versions (20 kills, 20 soak runs, 1,000 churn operations)
are marked `long` and run only with `make test-long`; `make test` runs the short ones.
"""
from __future__ import annotations

from tests.docker.conftest import _needs_engine  # noqa: F401 - autouse: skips where no engine answers
