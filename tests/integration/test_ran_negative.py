"""Negative control for the GTP-U attacks: against a UPF that checks nothing, they must be seen to leak.

The same small 5G alliance as test_ran_path.py, with one change: every UPF is
started with `"verify": false` (no gNB, TEID, inner-source or inner-destination check). A forged
TEID and a UE writing another UE's session address into its own session then
reach their server, and the prober must say LEAK; the GTP-U sent from a UE's
own link still meets the switch's refusal (the slice rules, not the UPF, stop
that one), so it keeps passing.
"""
from __future__ import annotations

import pytest

from tests.helpers import built
from tests.integration.test_ran_path import TOPO


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    from testbed.ran import agents

    real = agents.upf_config
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(agents, "upf_config", lambda plan, name: {**real(plan, name), "verify": False})
        yield from built(TOPO, "ran-broken-upf.yaml", tmp_path_factory)


def test_gtpu_attacks_leak_through_a_upf_that_checks_nothing(tb):
    from testbed.probe.attacks import Hosts
    from testbed.probe.gtpu import plan_gtpu_attacks
    from testbed.probe.run import _hosts, run_probes
    from testbed.ran.network import run_policy

    assert '"verify": false' in (tb.manifest.dir / "ran" / "upf-c.status.json").read_text()
    planned = plan_gtpu_attacks(tb.ran, run_policy(tb.topo, tb.ran), _hosts(tb))
    assert isinstance(_hosts(tb), Hosts) and planned
    results = {c.name: c for c in run_probes(tb, scripts=False) if c.kind.startswith("attack:gtpu")
               or c.kind in ("attack:spoof-inner", "attack:ue-to-ue", "attack:ue-to-upf")}
    forged = next(c for n, c in results.items() if "forged TEID" in n)
    assert forged.status == "fail" and forged.detail.startswith("LEAK"), forged
    inner = next(c for c in results.values() if c.kind == "attack:spoof-inner")
    assert inner.status == "fail" and inner.detail.startswith("LEAK"), inner
    other = next(c for n, c in results.items() if "session TEID" in n and "inside" in n)
    assert other.status == "fail", other
    # a UE reaches another UE's session (another slice) and the UPF's own stack through a UPF that lets
    # any destination into N6 (a tester found both with the real UPF, which now drops them)
    for kind in ("attack:ue-to-ue", "attack:ue-to-upf"):
        found = [c for c in results.values() if c.kind == kind]
        assert found and all(c.status == "fail" and c.detail.startswith("LEAK") for c in found), (kind, found)
    # the switch, not the UPF, refuses GTP-U from a UE's own link
    assert all(c.status == "pass" for c in results.values() if c.kind == "attack:gtpu-non-gnb")
