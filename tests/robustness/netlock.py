"""The machine-wide network lock, taken per network run by the long tests themselves.

Several developers (or agents) may build networks on one machine; they agree on
a lock file. A short test runs under the caller's `flock`; a long loop (20 kills,
20 soak runs, churn batches) must not hold it for its whole length, so it takes
the lock named by TESTBED_NET_LOCK around each network it builds, and releases
it in between. Unset (CI: one test process per machine): no locking.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

ENV = "TESTBED_NET_LOCK"


@contextlib.contextmanager
def net_lock() -> Iterator[None]:
    """Hold the network lock (if one is configured) for the body."""
    path = os.environ.get(ENV)
    if not path:
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
