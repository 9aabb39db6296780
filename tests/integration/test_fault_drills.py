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
