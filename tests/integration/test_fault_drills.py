"""Fault drills on a real testbed (minimal.yaml, its 5G path): each fault strikes, the cut flows' outage
and recovery are measured by their pings, and a drill whose fault is never undone is caught."""
from __future__ import annotations

import pytest

from tests.helpers import MINIMAL, built

DRILLS = """
faults:
  - {name: kiosk-cut, type: link-down, target: 'kiosk-01:clinic-sw', at: 0s, duration: 2s}
  - {name: pacs-lost, type: node-down, target: pacs, at: 0s, duration: 2s}
  - {name: tablet-slow, type: impair, target: 'dr-tablet-01:clinic-sw', set: [delay=30ms], at: 0s, duration: 2s}
  - {name: controller-dies, type: controller-kill, at: 3s, duration: 2s}
"""


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    yield from built(MINIMAL.read_text() + DRILLS, "minimal-drills.yaml", tmp_path_factory)


def test_every_drill_strikes_and_the_network_recovers(tb):
    from testbed.checks.faults import run_drills

    results = {r.name.split(":")[0]: r for r in run_drills(tb)}
    assert all(r.status == "pass" for r in results.values()), [(r.name, r.detail) for r in results.values()]
    kiosk, pacs = results["kiosk-cut"].metrics, results["pacs-lost"].metrics
    assert {a["src"] for a in kiosk["affected"]} == {"kiosk-01"} and kiosk["outage_s_max"] >= 1.0
    assert pacs["outage_s_max"] >= 1.5 and pacs["recovery_s_max"] < 2.0
    assert all(c["lost"] <= 0.05 * c["sent"] for c in kiosk["control"])
    assert results["controller-dies"].metrics["restart_s"] > 0


def test_a_fault_never_undone_fails_its_drill(tb, monkeypatch):
    from testbed.checks import faults
    from testbed.topology.model import Fault

    real_restore = faults.restore
    monkeypatch.setattr(faults, "restore", lambda tb_, d: None)  # the "repair" never happens
    cut = Fault(name="never-fixed", type="link-down", target="kiosk-01:clinic-sw", at=0, duration=1000)
    monkeypatch.setattr(tb, "topo", tb.topo.model_copy(update={"faults": [cut]}))
    try:
        [r] = faults.run_drills(tb)
    finally:
        tb.set_link("kiosk-01:clinic-sw", ["up"])
    assert r.status == "fail" and "not back within" in r.detail, r.detail
    assert real_restore is not faults.restore


RING = """
name: ring
defaults: {addressing: {pool: 10.77.0.0/24}}
nodes:
  - {name: s1, kind: switch}
  - {name: s2, kind: switch}
  - {name: s3, kind: switch}
  - {name: emr, kind: server, services: [emr]}
  - {name: pc, kind: host}
  - {name: kiosk, kind: host}
links:
  - {endpoints: [emr, s1]}
  - {endpoints: [pc, s3]}
  - {endpoints: [kiosk, s3]}
  - {endpoints: [s1, s3], delay: 1ms}
  - {endpoints: [s1, s2]}
  - {endpoints: [s2, s3]}
slices:
  - {name: clinical, sst: 1, sd: "000001", fiveqi: 7, members: [pc], services: [emr]}
faults:
  - {name: ring-cut, type: link-down, target: 's1:s3', at: 1s, duration: 4s}
"""


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    yield from built(RING, "ring.yaml", tmp_path_factory)


def test_a_cut_ring_link_is_rerouted_around_and_isolation_holds_during_the_failover(ring):
    """s1-s3 carries pc -> emr (it has an impairment relay: the cut is seen as a port going down, as a fibre
    cut would be); the controller moves forwarding over s2, the prober finds no hole meanwhile."""
    from testbed.checks.faults import run_drills
    from testbed.probe.run import run_probes

    [r] = run_drills(ring)
    flow = r.metrics["affected"][0]
    assert r.status == "pass" and (flow["src"], flow["dst"]) == ("pc", "emr"), r.detail
    assert flow["lost"] <= 5 and (flow["outage_s"] or 0) < 1.0, flow  # failover, not the 4 s cut
    assert r.metrics["controller_reroutes"] >= 2  # down at both ends (and up again)
    ring.set_link("s1:s3", ["down"])
    try:
        results = run_probes(ring, scripts=False)
    finally:
        ring.set_link("s1:s3", ["up"])
    failed = [(c.kind, c.name, c.detail) for c in results if c.failed]
    assert not failed, failed[:5]
    assert any(c.name.startswith("pc -> emr emr") and c.status == "pass" for c in results)
