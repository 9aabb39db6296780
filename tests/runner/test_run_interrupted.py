"""Ctrl-C / SIGTERM during the workloads stage (no root): the workloads stop at once, what they measured
is kept, and the run's report says it was interrupted.

The workload type here starts a real program (`sleep`), as ping or iperf3 would inside a node; ending
the node's programs (runner.end_node_programs, a network-namespace scan that needs root) is replaced
by ending the programs this type started. Before the fix the waiting thread sat in
ThreadPoolExecutor.shutdown(wait=True) until the 40 s workload had finished, and nothing of the run
was returned.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest
from pydantic import BaseModel, ConfigDict

from testbed import runner, workloads
from testbed.checks.result import CheckResult
from testbed.cli.signals import Interrupted, signals_raise
from testbed.events import Emitter
from testbed.topology.loader import parse_text
from testbed.workloads.base import LATENCY_MS, Measurement

TOPO = """\
name: intr
nodes:
  - {name: sw, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
links:
  - {endpoints: [a, sw]}
  - {endpoints: [b, sw]}
workloads:
  - {name: quick, type: prog, from: [a], to: b, duration: 200ms, slo: {latency_p95: 5ms}}
  - {name: long, type: prog, from: [a], to: b, duration: 40s, slo: {latency_p95: 5ms}}
  - {name: later, type: prog, from: [b], to: a, at: 30s, duration: 1s, slo: {latency_p95: 5ms}}
"""
SIGNAL_AFTER_S = 1.0


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Prog:
    """Runs `sleep <duration>` and waits for it: one 1 ms sample per 100 ms it ran, as a ping would."""

    name, summary, Params, agent = "prog", "test", _Params, None

    def __init__(self):
        self.procs: list[subprocess.Popen] = []
        self.started: list[str] = []

    def run(self, tb, w, params, emit):
        self.started.append(w.name)
        t0 = time.monotonic()
        proc = subprocess.Popen(["sleep", f"{w.duration / 1000:g}"])
        self.procs.append(proc)
        proc.wait()
        ran = time.monotonic() - t0
        m = Measurement(w.name, self.name, w.src[0], w.dst, sent=int(w.duration // 100),
                        received=int(ran * 10), seconds=ran)
        m.samples[LATENCY_MS] = [1.0] * max(1, int(ran * 10))
        return [m]

    def end_all(self, _tb=None) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()

    def running(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]


@pytest.fixture
def prog(monkeypatch):
    t = Prog()
    workloads.register(t)
    monkeypatch.setattr(runner, "end_node_programs", t.end_all, raising=False)  # (absent before the fix)
    yield t
    t.end_all()
    workloads.unregister("prog")


def _signal_soon(sig: int, after: float = SIGNAL_AFTER_S) -> threading.Timer:
    timer = threading.Timer(after, os.kill, (os.getpid(), sig))
    timer.start()
    return timer


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_workloads_at_once_and_keeps_what_they_measured(prog, sig):
    tb = SimpleNamespace(topo=parse_text(TOPO, "intr.yaml"), measurements=[], timings={})
    sofar: list[CheckResult] = []
    t0 = time.monotonic()
    with signals_raise():
        timer = _signal_soon(sig)
        with pytest.raises(Interrupted) as info:
            runner.run_workloads(tb, Emitter(None), sofar=sofar)
    took = time.monotonic() - t0
    timer.cancel()
    assert info.value.signum == sig and info.value.exit_code == 128 + sig
    assert took < SIGNAL_AFTER_S + 3, f"{took:.1f} s: waited for the 40 s workload"
    assert prog.running() == []  # its program was ended, not left to run out
    name = signal.Signals(sig).name
    by = {c.name: c for c in sofar}
    assert by["quick: a -> b latency_p95"].status == "pass"  # finished before the signal: judged as usual
    assert by["long"].status == "skip" and f"interrupted by {name} after 1." in by["long"].detail
    assert "not judged" in by["long"].detail
    assert by["later"].status == "skip" and by["later"].detail == f"not started: interrupted by {name}"
    assert "later" not in prog.started  # its `at: 30s` never came
    measured = {m["workload"]: m for m in tb.measurements}
    assert set(measured) == {"quick", "long"}  # the cut-short workload's samples are kept
    assert 5 <= measured["long"]["received"] <= 20 and measured["long"]["samples"][LATENCY_MS]
    assert 0 < tb.timings["workloads_s"] < SIGNAL_AFTER_S + 3


def test_ctrl_c_without_the_cli_handler_is_a_keyboard_interrupt_too(prog):
    tb = SimpleNamespace(topo=parse_text(TOPO, "intr.yaml"), measurements=[], timings={})
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = _signal_soon(signal.SIGINT)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            runner.run_workloads(tb, Emitter(None))
        assert time.monotonic() - t0 < SIGNAL_AFTER_S + 3
        timer.cancel()
    finally:
        signal.signal(signal.SIGINT, old)
    assert prog.running() == []


class Stuck:
    """A workload that ignores everything (a thread blocked outside any program): it must not hold the run."""

    name, summary, Params, agent = "stuck", "test", _Params, None

    def __init__(self):
        self.release = threading.Event()

    def run(self, tb, w, params, emit):
        self.release.wait(60)
        return []


def test_a_workload_that_does_not_return_is_left_behind_after_the_grace(monkeypatch):
    stuck = Stuck()
    workloads.register(stuck)
    monkeypatch.setattr(runner, "end_node_programs", lambda _tb: None)
    monkeypatch.setattr(runner, "STOP_GRACE_S", 0.5)
    topo = parse_text(TOPO.replace("type: prog", "type: stuck"), "intr.yaml")
    tb = SimpleNamespace(topo=topo, measurements=[], timings={})
    sofar: list[CheckResult] = []
    try:
        with signals_raise():
            timer = _signal_soon(signal.SIGINT, 0.3)
            t0 = time.monotonic()
            with pytest.raises(Interrupted):
                runner.run_workloads(tb, Emitter(None), sofar=sofar)
            took = time.monotonic() - t0
            timer.cancel()
        assert took < 3
        by = {c.name: c for c in sofar}
        assert by["long"].status == "skip" and "still running 0.5 s after its programs were ended" in by["long"].detail
        assert [t for t in threading.enumerate() if t.name == "workload-long"][0].daemon  # exit does not wait for it
    finally:
        stuck.release.set()
        workloads.unregister("stuck")


class FakeTestbed:
    """What runner.run needs of a Testbed, without a network: up and down are recorded."""

    __test__ = False
    run_id = "beef"

    def __init__(self, topo):
        self.topo, self.source = topo, "intr.yaml"
        self.timings: dict[str, float] = {}
        self.measurements: list = []
        self.warnings: list[str] = []
        self.manifest = None
        self.ran = None
        self.emit = Emitter(None)
        self.downs = 0

    def __enter__(self):
        self.emit.stage("nodes", "starting node namespaces")
        self.timings["up_s"] = 0.01
        return self

    def __exit__(self, *exc):
        self.down()

    def down(self):
        self.downs += 1
        self.emit.stage("teardown", "removing run beef")
        self.timings["down_s"] = 0.01


def fake_reachability(monkeypatch) -> None:
    monkeypatch.setattr(runner, "intended_pairs", lambda topo, ran: [("a", "b")])
    monkeypatch.setattr(runner, "check_reachability",
                        lambda tb, pairs: [CheckResult("reachability", f"{s} -> {d}", "pass") for s, d in pairs])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_tears_down_and_raises_with_the_report_of_what_ran(prog, monkeypatch, sig):
    fake_reachability(monkeypatch)
    tb = FakeTestbed(parse_text(TOPO, "intr.yaml"))
    with signals_raise():
        timer = _signal_soon(sig)
        t0 = time.monotonic()
        with pytest.raises(runner.RunInterrupted) as info:
            runner.run(tb, isolation=False)
        took = time.monotonic() - t0
        timer.cancel()
    assert took < SIGNAL_AFTER_S + 3
    assert tb.downs == 1  # torn down before the report was made
    exc = info.value
    name = signal.Signals(sig).name
    assert exc.signum == sig and exc.exit_code == 128 + sig
    rep = exc.report
    assert rep.error == f"interrupted by {name} during workloads" and str(exc) == rep.error
    assert rep.verdict == "FAIL" and rep.run_id == "beef"
    assert [c.name for c in rep.checks if c.kind == "reachability"] == ["a -> b"]  # the stages that finished
    assert {c.name: c.status for c in rep.checks if c.kind == "workload"} == {
        "quick: a -> b latency_p95": "pass", "long": "skip", "later": "skip"}
    assert {m["workload"] for m in rep.measurements} == {"quick", "long"}
    assert "workloads_s" in rep.timings and "down_s" in rep.timings and rep.timings["checks_s"] < SIGNAL_AFTER_S + 3


def test_an_interrupt_while_building_names_the_build_stage(prog):
    class Slow(FakeTestbed):
        def __enter__(self):
            self.emit.stage("links", "creating links")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # interrupted
            raise AssertionError("not interrupted")

    tb = Slow(parse_text(TOPO, "intr.yaml"))
    with signals_raise():
        with pytest.raises(runner.RunInterrupted) as info:
            runner.run(tb, isolation=False)
    assert info.value.report.error == "interrupted by SIGTERM during build (links)"
    assert info.value.report.checks == []
