"""Capture agents start a few at a time, and a snapshot waits until every agent has caught up.

A hundred agents importing at once on 2 cores left the gNBs and the switch daemon a hundredth of the CPU
each for seconds: UEs lost their radio link mid-probe. And an agent behind its queue when the prober read
the captures would have reported a frame that reached its node as not arrived.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from types import SimpleNamespace

import pytest

from testbed.probe import agents
from testbed.probe.agents import STARTING_AT_ONCE, Captures


class FakeOut:
    """A sink's stdout: lines put by the fake, read by Captures' reader thread; None ends it."""

    def __init__(self) -> None:
        self.q: queue.Queue = queue.Queue()

    def __iter__(self):
        while (line := self.q.get()) is not None:
            yield line


class FakeIn:
    def __init__(self, proc: "FakeProc") -> None:
        self.proc = proc

    def write(self, text: str) -> None:
        word, _, n = text.strip().partition(" ")
        if word == "sync" and self.proc.answers_sync:
            self.proc.stdout.q.put(json.dumps({"event": "synced", "n": int(n)}) + "\n")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.proc.returncode = 0
        self.proc.stdout.q.put(None)


class FakeProc:
    def __init__(self, answers_sync: bool = True) -> None:
        self.stdout, self.answers_sync, self.returncode = FakeOut(), answers_sync, None
        self.stdin = FakeIn(self)

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        return self.returncode

    def kill(self) -> None:
        self.returncode = -9


class FakeNet:
    """Nodes whose sinks say ready a little after they start; records how many were starting at once."""

    def __init__(self, hosts: list[str], silent: set[str] = frozenset()) -> None:
        self.procs: dict[str, FakeProc] = {}
        self.starting_max = 0
        self.silent = silent
        self.hosts = hosts

    def node(self, name: str):
        def popen(argv, **kw):
            p = self.procs[name] = FakeProc(answers_sync=name not in self.silent)
            starting = sum(q.returncode is None and not getattr(q, "said_ready", False) for q in self.procs.values())
            self.starting_max = max(self.starting_max, starting)

            def ready() -> None:
                time.sleep(0.03)
                p.said_ready = True
                p.stdout.q.put(json.dumps({"event": "ready"}) + "\n")
            threading.Thread(target=ready, daemon=True).start()
            return p
        return SimpleNamespace(popen=popen)


@pytest.fixture
def net(monkeypatch):
    hosts = [f"h{i}" for i in range(3 * STARTING_AT_ONCE + 2)]
    monkeypatch.setattr(agents, "host_interfaces", lambda tb: {h: f"{h}-eth0" for h in hosts})
    monkeypatch.setattr(agents, "plan_tuns", lambda tb: {})
    return FakeNet(hosts)


def test_agents_start_a_few_at_a_time_and_all_get_ready(net):
    caps = Captures(net, {}, max_seconds=10)
    caps.start(timeout=20)
    assert set(caps.ready) == set(net.hosts)
    assert 1 < net.starting_max <= STARTING_AT_ONCE
    caps.stop()


def test_snapshot_waits_for_every_agent_to_catch_up(net):
    caps = Captures(net, {}, max_seconds=10)
    caps.start(timeout=20)
    assert caps.sync(timeout=5) == set() and caps.lagging == set()
    assert all(caps.synced[h] == 1 for h in net.hosts)
    caps.snapshot()  # syncs again: a second question, a second answer
    assert all(caps.synced[h] == 2 for h in net.hosts)
    caps.stop()


def test_an_agent_that_does_not_catch_up_is_named(net):
    net.silent = {"h3"}
    caps = Captures(net, {}, max_seconds=10)
    caps.start(timeout=20)
    t0 = time.monotonic()
    assert caps.sync(timeout=0.3) == {"h3"} and caps.lagging == {"h3"}
    assert time.monotonic() - t0 < 3
    caps.stop()
