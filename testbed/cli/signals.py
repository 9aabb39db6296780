"""Turn SIGINT/SIGTERM/SIGHUP into an exception so `with Testbed(...)` unwinds and tears down.

The exception, `Interrupted`, is a KeyboardInterrupt: every stop signal then unwinds as Ctrl-C
always did, past the `except Exception` / `except TestbedError` of code that turns a stage's
failure into a failed check (a SIGTERM during the proof or a drill would otherwise be taken for
that stage failing, and the run would go on). It carries the signal, and the conventional exit
code, 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.

While teardown runs, further signals are ignored: a second Ctrl-C must not leave a
half-removed network behind.
"""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class Interrupted(KeyboardInterrupt):
    """A stop signal received while signals_raise() was in force."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}; torn down")


def _raise(signum: int, _frame: object) -> None:
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
