"""Running traffic agents inside nodes: all at once, bounded in time, one JSON document back from each.

A workload type starts one agent process per source -> target (a program of
traffic/ or a standard tool), waits for all of them with one deadline, kills
whatever overruns it, and reads the single JSON document each prints on
stdout. A failure (timeout, crash, unreadable output) comes back as an error
string, never as an exception, so one broken pair does not hide the others'
measurements. `plan` turns the (source, target) pairs into jobs, a pair that
cannot be measured (its target offers no such service) into a Measurement
carrying why; `measured` starts the Measurement of a finished job.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from testbed.workloads.base import Measurement
from testbed.workloads.targets import service_port


@dataclass
class Job:
    src: str  # node the agent runs in
    dst: str  # the target node (for the Measurement)
    argv: list[str]
    result: dict[str, Any] | None = None  # the agent's JSON document
    error: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # the caller's own bookkeeping


def agent(module: str, *args: object) -> list[str]:
    """argv of a traffic agent module, run with the testbed's interpreter (containers mount it)."""
    return [sys.executable, "-m", module, *(str(a) for a in args)]


def plan(w: Any, type_name: str, pairs: Iterable[tuple[Any, ...]],
         job: Callable[..., Job | str], topo: Any = None, service: str | None = None
         ) -> tuple[list[Job], list[Measurement]]:
    """The jobs of entry `w`: `job(src, dst, *rest)` for each (src, dst, *rest) of `pairs`.

    With `service` (and `topo`), the target's port of that service is looked up here and
    passed as the last argument: `job(src, dst, *rest, port)`; a target not offering it
    cannot be measured. Where `job` returns a string instead (why that pair cannot be
    measured), the pair gets a Measurement with that error and no job. Returns (jobs,
    those measurements).
    """
    jobs, refused = [], []
    for src, dst, *rest in pairs:
        if service is not None:
            port = service_port(topo, dst, service)
            j: Job | str = f"{dst} offers no {service} service" if port is None else job(src, dst, *rest, port)
        else:
            j = job(src, dst, *rest)
        if isinstance(j, str):
            refused.append(Measurement(w.name, type_name, src, dst, errors=[j]))
        else:
            jobs.append(j)
    return jobs, refused


def measured(workload: str, type_name: str, job: Job) -> tuple[Measurement, dict[str, Any] | None]:
    """A finished job's Measurement, with its time, its failure first among the errors, and (when the
    agent's document came back) the document's sent, received and errors; and that document."""
    m = Measurement(workload, type_name, job.src, job.dst, seconds=job.seconds)
    if job.error:
        m.errors.append(job.error)
    doc = job.result
    if doc is not None:
        m.sent, m.received = int(doc.get("sent", 0)), int(doc.get("received", 0))
        m.errors += doc.get("errors", [])
    return m, doc


def last_json(text: str) -> dict[str, Any] | None:
    """The JSON document an agent printed: its whole stdout, or else its last line that parses."""
    text = text.strip()
    if not text:
        return None
    try:
        doc = json.loads(text)
        return doc if isinstance(doc, dict) else None
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            return doc
    return None


def _one(tb: Any, job: Job, timeout: float) -> Job:
    t0 = time.monotonic()
    proc = tb.node(job.src).popen(job.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        job.error = f"no result within {timeout:.0f}s"
    job.seconds = time.monotonic() - t0
    job.result = last_json(out)
    if job.result is None and job.error is None:
        tail = (err or out).strip().splitlines()[-3:]
        job.error = f"exit {proc.returncode}: " + (" | ".join(tail) if tail else "no output")
    return job


def run_all(tb: Any, jobs: list[Job], timeout: float) -> list[Job]:
    """Start every job at once (each in its source node); return them with result or error filled."""
    if not jobs:
        return jobs
    with ThreadPoolExecutor(max_workers=min(64, len(jobs))) as pool:
        return list(pool.map(lambda j: _one(tb, j, timeout), jobs))
