"""Turn SIGTERM/SIGHUP into an exception so `with Testbed(...)` unwinds and tears down.

Ctrl-C already raises KeyboardInterrupt. While teardown runs, further signals are
ignored: a second Ctrl-C must not leave a half-removed network behind.
"""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from testbed.errors import TestbedError


class Interrupted(TestbedError):
    exit_code = 130

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}; torn down")


def _raise(signum: int, _frame: object) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt; we want Ctrl-C / kill -INT to tear down anyway.
    old = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
