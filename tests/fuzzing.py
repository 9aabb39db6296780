"""Helpers of the fuzz tests: run the CLI in-process on hostile input, bounded in time, counted.

`invoke(args)` runs `testbed ARGS` with click's CliRunner under an alarm (a hang
fails the example instead of blocking the suite); `assert_clean_validate` is the
property every topology fuzz test checks: exit 0, or exit 2 with `file:line`
problems, never a traceback. `VOLUME` counts what was tried; `report_volume` keeps
it per module and tests/conftest.py prints it in pytest's summary ("fuzz volume").
"""
from __future__ import annotations

import re
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from click.testing import CliRunner, Result

from testbed.cli.main import cli

HANG_S = 30.0  # an example taking longer than this is a hang, not a slow machine


class Hang(Exception):
    pass


@dataclass
class Volume:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    slowest: float = 0.0

    def add(self, what: str, seconds: float) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        self.seconds[what] = self.seconds.get(what, 0.0) + seconds
        self.slowest = max(self.slowest, seconds)

    def line(self) -> str:
        parts = [f"{n} {what} in {self.seconds[what]:.1f}s" for what, n in sorted(self.counts.items())]
        return "fuzz: " + ", ".join(parts) + f" (slowest {self.slowest:.2f}s)"


VOLUME = Volume()


@contextmanager
def alarm(seconds: float = HANG_S):
    def ring(signum, frame):
        raise Hang(f"no answer within {seconds:.0f}s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def invoke(args: list[str], what: str, env: dict[str, str] | None = None) -> tuple[Result, float]:
    """`testbed ARGS` in-process; (result, seconds). Counted in VOLUME under `what`."""
    t0 = time.perf_counter()
    with alarm():
        result = CliRunner().invoke(cli, args, env=env, catch_exceptions=True)
    took = time.perf_counter() - t0
    VOLUME.add(what, took)
    return result, took


@contextmanager
def counted(what: str):
    """Count one input fed to a parser directly (no CLI) in VOLUME, with its time."""
    t0 = time.perf_counter()
    try:
        with alarm():
            yield
    finally:
        VOLUME.add(what, time.perf_counter() - t0)


def traceback_of(result: Result) -> str:
    import traceback

    if result.exception is None or isinstance(result.exception, SystemExit):
        return ""
    return "".join(traceback.format_exception(result.exception))


def assert_no_traceback(result: Result) -> None:
    tb = traceback_of(result)
    assert not tb, f"crashed (exit {result.exit_code}):\n{tb}\noutput:\n{result.output[-2000:]}"
    assert "Traceback" not in result.output, result.output[-3000:]


def assert_clean_validate(result: Result, path: str) -> None:
    """`testbed validate PATH` answered exit 0, or exit 2 with every problem as `PATH:LINE ...`."""
    assert_no_traceback(result)
    assert result.exit_code in (0, 2), f"exit {result.exit_code}:\n{result.output[-3000:]}"
    if result.exit_code == 0:
        return
    raw = [ch for ch in result.output if ch != "\n" and not ch.isprintable()]
    assert not raw, f"unprintable characters from the file reached the terminal: {raw[:5]}\n{result.output[-2000:]}"
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines and re.fullmatch(r"\d+ problem\(s\)", lines[-1]), result.output[-3000:]
    located = re.compile(re.escape(path) + r":\d+[ :]")
    for ln in lines[:-1]:
        if ln.startswith("... and ") or ln.startswith(f"{path}: ... and "):
            continue
        assert located.match(ln), f"problem without file:line: {ln!r}\nall output:\n{result.output[-3000:]}"


REPORTS: list[str] = []  # one line per fuzz module; tests/conftest.py prints them in pytest's summary


def report_volume(request) -> None:
    """Keep (and reset) the fuzzing volume of a test module, for pytest's terminal summary."""
    if VOLUME.counts:
        REPORTS.append(f"{request.module.__name__}: {VOLUME.line()}")
    VOLUME.counts.clear()
    VOLUME.seconds.clear()
    VOLUME.slowest = 0.0
