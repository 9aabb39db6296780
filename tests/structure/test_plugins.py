"""A new node kind or workload type is one module plus its registration: nothing else changes.

Each test writes a brand-new module into a temporary directory (not the
package), registers what it defines, and drives the layers that must follow
from the registry alone: the topology model and schema, validation, the run's
layout and controller plan, the slice policy (infra grants), the engine's
daemon stage, and the runner's workload validation and scoring.
"""
from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from testbed import kinds, workloads
from testbed.engine.build import daemon_argv
from testbed.errors import TopologyError
from testbed.openflow.layout import make_layout
from testbed.runner import check_workloads
from testbed.slicing.plan import controller_plan
from testbed.slicing.policy import INFRA, compile_policy
from testbed.topology.loader import parse_text
from testbed.topology.schema import schema
from testbed.workloads import slo
from testbed.workloads.base import LATENCY_MS, Measurement

KIND_MODULE = '''
"""pos: a payment terminal that must reach every server's payment service, whatever the slices say."""
from testbed.kinds.base import Daemon, InfraGrant, Kind

KIND = Kind("pos", "point-of-sale terminal", infra=(InfraGrant("server", "payment"),),
            daemons=(Daemon("heartbeat", ("python3", "-m", "http.server", "--bind", "{ip}", "9100")),))
'''

TOPOLOGY = """\
name: plug
nodes:
  - {name: sw, kind: switch}
  - {name: his, kind: server, services: [payment]}
  - {name: till-1, kind: pos}
links:
  - {endpoints: [his, sw]}
  - {endpoints: [till-1, sw]}
slices:
  - {name: s, members: [his], services: [payment]}
"""


@pytest.fixture
def new_module(tmp_path, monkeypatch):
    def write(name: str, text: str):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
        monkeypatch.syspath_prepend(str(tmp_path))
        sys.modules.pop(name, None)
        return importlib.import_module(name)
    return write


def test_a_new_kind_is_one_module_plus_registration(new_module):
    mod = new_module("plugin_kind_pos", KIND_MODULE)
    with pytest.raises(TopologyError, match="kind"):
        parse_text(TOPOLOGY, "plug.yaml")  # not registered yet: an unknown kind, located
    kinds.register(mod.KIND)
    try:
        topo = parse_text(TOPOLOGY, "plug.yaml")
        assert [n.name for n in topo.hosts] == ["his", "till-1"]
        assert "pos" in schema()["$defs"]["Node"]["properties"]["kind"]["enum"]
        pol = compile_policy(topo)
        infra = [(g.src, g.dst, g.service) for g in pol.grants if g.slice == INFRA]
        assert infra == [("till-1", "his", "payment")]
        lay = make_layout(topo, "0abc")
        plan = controller_plan(topo, lay)
        notes = [r["note"] for rules in plan["switches"].values() for r in rules]
        assert "till-1 -> his payment (tcp/8443)" in notes
        argv = daemon_argv(mod.KIND, topo.node("till-1"), "10.77.0.2")
        assert argv == [["python3", "-m", "http.server", "--bind", "10.77.0.2", "9100"]]
    finally:
        kinds.unregister("pos")


WORKLOAD_MODULE = '''
"""echo-count: counts; a minimal workload type with a key of its own."""
from pydantic import BaseModel, ConfigDict

from testbed.workloads.base import LATENCY_MS, Measurement


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 3


class EchoCount:
    name = "echo-count"
    summary = "test type"
    Params = Params
    agent = None

    def run(self, tb, w, params, emit):
        m = Measurement(w.name, self.name, w.src[0], w.dst, sent=params.count, received=params.count)
        m.samples[LATENCY_MS] = [1.0] * params.count
        return [m]


TYPE = EchoCount()
'''

WL_TOPOLOGY = """\
name: plug
nodes:
  - {name: sw, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
links:
  - {endpoints: [a, sw]}
  - {endpoints: [b, sw]}
workloads:
  - {name: w1, type: echo-count, from: [a], to: b, count: 5, slo: {latency_p95: 2ms}}
"""


def test_a_new_workload_type_is_one_module_plus_registration(new_module):
    mod = new_module("plugin_workload_echo", WORKLOAD_MODULE)
    topo = parse_text(WL_TOPOLOGY, "plug.yaml")
    with pytest.raises(TopologyError, match=r"plug.yaml:10 workloads\[0\].type: unknown workload type"):
        check_workloads(topo)
    workloads.register(mod.TYPE)
    try:
        check_workloads(topo)
        bad = parse_text(WL_TOPOLOGY.replace("count: 5", "cuont: 5"), "plug.yaml")
        with pytest.raises(TopologyError, match=r"workloads\[0\].cuont: unknown key .*did you mean 'count'"):
            check_workloads(bad)
        w = topo.workloads[0]
        [m] = mod.TYPE.run(None, w, workloads.params_of(w), print)
        assert len(m.samples[LATENCY_MS]) == 5
        [verdict] = slo.verdicts(m, w.slo)
        assert verdict.status == "pass" and verdict.metrics["measured"] == 1.0
    finally:
        workloads.unregister("echo-count")


def test_engine_and_checks_never_name_a_kind():
    """The engine, checks, probes, workloads and runner ask the registry; they never compare kind names."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "testbed"
    names = "|".join(kinds.BUILTIN)
    pattern = re.compile(rf"kind\s*[!=]=\s*[\"']({names})[\"']|[\"']({names})[\"']\s*[!=]=\s*\S*kind")
    hits = [f"{p.relative_to(root)}:{i}" for d in ("engine", "checks", "probe", "workloads", "runner.py", "cli")
            for p in ([root / d] if d.endswith(".py") else sorted((root / d).rglob("*.py")))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_slo_scoring_fails_what_it_should():
    m = Measurement("w", "ping", "a", "b", sent=10, received=9, samples={LATENCY_MS: [1, 2, 3, 4, 5, 6, 7, 8, 50]})
    from testbed.topology.model import Slo

    got = {c.name.split()[-1]: c.status for c in slo.score(m, Slo(latency_p50=5, latency_p95=10, loss_max=5))}
    assert got == {"latency_p50": "pass", "latency_p95": "fail", "loss_max": "fail"}  # p95 = 50 (nearest rank), loss 10%
    assert slo.percentile([3, 1, 2], 50) == 2 and slo.jitter([1, 3, 2]) == 1.5
