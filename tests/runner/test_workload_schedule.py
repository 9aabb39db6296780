"""The runner runs declared workloads concurrently, each starting at its `at`, and scores them."""
from __future__ import annotations

import time
from types import SimpleNamespace

from pydantic import BaseModel, ConfigDict

from testbed import workloads
from testbed.events import Emitter
from testbed.runner import run_workloads
from testbed.topology.loader import parse_text
from testbed.workloads.base import LATENCY_MS, Measurement

TOPO = """\
name: sched
nodes:
  - {name: sw, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
links:
  - {endpoints: [a, sw]}
  - {endpoints: [b, sw]}
workloads:
  - {name: first, type: sleepy, from: [a], to: b, duration: 400ms, slo: {latency_p95: 5ms}}
  - {name: second, type: sleepy, from: [b], to: a, at: 200ms, duration: 400ms, slo: {latency_p95: 0.5ms}}
"""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sleepy:
    """Records when it started; sleeps for the entry's duration; every 'latency' is 1 ms."""

    name, summary, Params, agent = "sleepy", "test", _Params, None

    def __init__(self):
        self.started: dict[str, float] = {}

    def run(self, tb, w, params, emit):
        self.started[w.name] = time.monotonic()
        time.sleep(w.duration / 1000)
        m = Measurement(w.name, self.name, w.src[0], w.dst, sent=3, received=3)
        m.samples[LATENCY_MS] = [1.0, 1.0, 1.0]
        return [m]


def test_workloads_start_on_schedule_run_concurrently_and_are_scored():
    t = Sleepy()
    workloads.register(t)
    try:
        topo = parse_text(TOPO, "sched.yaml")
        tb = SimpleNamespace(topo=topo, measurements=[], timings={})
        t0 = time.monotonic()
        results = run_workloads(tb, Emitter(None))
        took = time.monotonic() - t0
    finally:
        workloads.unregister("sleepy")
    assert 0.18 <= t.started["second"] - t.started["first"] <= 0.35  # `at: 200ms`
    assert took < 0.75  # concurrent: 200 ms offset + 400 ms, not 800 ms in sequence
    verdicts = {r.name: r.status for r in results}
    assert verdicts == {"first: a -> b latency_p95": "pass", "second: b -> a latency_p95": "fail"}
    assert sorted(m["workload"] for m in tb.measurements) == ["first", "second"]  # raw samples kept
