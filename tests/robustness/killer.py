"""Run `testbed run` and SIGKILL it at a chosen moment: a time, or an instant a stage is under way.

Moments are drawn from a seeded generator, so a failing kill can be replayed.
Kinds: `time` (seconds after start), `containers` (while a `docker run` of the
run is in flight), `relay` (once a relay process exists, before or just after it
reports ready), `checks` (after the reachability/probe stage began). The watcher
polls the run's process tree every 10 ms; the kill takes the tree's snapshot
first, so the residue check can insist that every process the run had started
is gone after `testbed clean`.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import REPO, TESTBED
from tests.robustness.residue import descendants

KINDS = ("containers", "relay", "checks", "time")
CHECK_MARKERS = ("reachability", "probe-agents", "probe-matrix", "probe-attacks", "workloads")


@dataclass(frozen=True)
class Moment:
    kind: str
    delay: float  # after the trigger (kind `time`: after start)

    def __str__(self) -> str:
        return f"{self.kind}+{self.delay:.2f}s"


def moments(n: int, seed: int, time_span: float = 9.0) -> list[Moment]:
    """n moments, every kind represented (round robin from a shuffled start), delays random."""
    rng = random.Random(seed)
    kinds = list(KINDS)
    rng.shuffle(kinds)
    span = {"containers": 0.4, "relay": 0.25, "checks": 4.0, "time": time_span}
    return [Moment(k, rng.uniform(0.3 if k == "time" else 0.0, span[k])) for k in
            (kinds[i % len(kinds)] for i in range(n))]


@dataclass
class Kill:
    moment: Moment
    pid: int
    killed: bool = False
    at_s: float = 0.0
    last_line: str = ""
    tree: list[tuple[int, float, list[str]]] = field(default_factory=list)
    rc: int | None = None


def _triggered(kind: str, tree: list[tuple[int, float, list[str]]], lines: list[str]) -> bool:
    if kind == "containers":
        return any(argv[:2] == ["docker", "run"] for _, _, argv in tree)
    if kind == "relay":
        return any("testbed.impair.relay" in argv for _, _, argv in tree)
    if kind == "checks":
        return any(m in ln for ln in lines for m in CHECK_MARKERS)
    return True


def run_and_kill(topology: Path, moment: Moment, env: dict[str, str], timeout: float = 240.0) -> Kill:
    """Start `testbed run TOPOLOGY`, SIGKILL it at `moment`, return what was killed (and when)."""
    proc = subprocess.Popen([*TESTBED, "run", "--report-dir", env["TB_REPORTS"], str(topology)], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    k = Kill(moment, proc.pid)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: [lines.append(ln.rstrip()) for ln in proc.stdout], daemon=True)
    reader.start()
    t0 = time.monotonic()
    fire_at = t0 + moment.delay if moment.kind == "time" else None
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        if fire_at is None:
            if _triggered(moment.kind, descendants(proc.pid), lines):
                fire_at = time.monotonic() + moment.delay
        if fire_at is not None and time.monotonic() >= fire_at:
            k.tree = descendants(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            k.killed, k.at_s = True, time.monotonic() - t0
            break
        time.sleep(0.01)
    if proc.poll() is None and not k.killed:  # the trigger never came: end it as a kill too
        k.tree = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    k.rc = proc.wait(30)
    reader.join(5)
    k.last_line = next((ln for ln in reversed(lines) if ln.strip()), "")
    return k
