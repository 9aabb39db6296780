"""The controller-kill drill judges fail-secure by whether the watched flows kept forwarding: a few echoes
lost here and there on a loaded path pass, a gap (the flow stopped) or heavy loss fails."""
from __future__ import annotations

from testbed.checks.faults import Drill, _flows_verdict
from testbed.topology.model import Fault


def _verdict(lost_at: set[int], n: int = 130):
    t0 = 1000.0
    records = [[(t0 + 0.1 * i, i not in lost_at) for i in range(n)]]
    d = Drill(Fault(name="crash", type="controller-kill", at=2000, duration=3000), [("tablet", "vdi")], [],
              t_inject=t0 + 2.0, t_restore=t0 + 5.0)
    d.before["restart_s"] = 2.5
    return _flows_verdict(d, records, [])


def test_scattered_losses_on_a_loaded_path_still_mean_it_kept_forwarding():
    r = _verdict({5, 21, 40, 61, 80, 99, 120})  # 7 of 130, never two in a row
    assert r.status == "pass", r.detail


def test_a_gap_means_the_flow_stopped():
    r = _verdict(set(range(30, 50)))  # 2 s without an answer
    assert r.status == "fail" and "longest gap" in r.detail


def test_heavy_loss_fails_even_without_a_gap():
    r = _verdict(set(range(0, 130, 6)))  # 22 of 130, spread
    assert r.status == "fail"
