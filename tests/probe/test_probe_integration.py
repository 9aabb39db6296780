"""The prober against real networks: it must catch leaks, and pass a correct slicing.

Against `allow-all` (a deliberately broken app that ignores slices) the run must
report specific leaks and successful spoofing; against `slicing` it must report
no leak and no false block. Every test tears down and checks nothing is left.
"""
from __future__ import annotations

import json

import pytest

from tests.helpers import MINIMAL, leftovers

pytestmark = pytest.mark.integration


def _probe(app: str):
    from testbed.engine.testbed import Testbed
    from testbed.probe.run import run_probes

    with Testbed.from_file(MINIMAL, controller_app=app) as tb:
        rid = tb.run_id
        results = run_probes(tb)
    return rid, {(r.kind, r.name): r for r in results}


def test_broken_policy_leaks_are_reported(network, state_dir):
    rid, res = _probe("allow-all")
    assert leftovers(rid, state_dir) == []
    leak = res[("isolation", "kiosk-01 -> pacs pacs (tcp/104) (expect fail)")]
    assert leak.status == "fail" and leak.detail.startswith("LEAK") and leak.metrics["captured_at"] == ["pacs"]
    assert res[("isolation", "kiosk-01 -> dr-tablet-01 icmp echo (expect fail)")].metrics["verdict"] == "LEAK"
    assert res[("attack:forbidden-port", "kiosk-01 -> emr tcp/22 (tcp/22) (expect fail)")].status == "fail"
    # should-pass flows still pass: an allow-all network blocks nothing
    assert res[("isolation", "dr-tablet-01 -> pacs pacs (tcp/104) (expect pass)")].status == "pass"
    assert not any(r.metrics.get("verdict") == "FALSE BLOCK" for r in res.values())
    by_kind = {}
    for (kind, _), r in res.items():
        by_kind.setdefault(kind, []).append(r)
    for kind in ("attack:spoof-ip", "attack:spoof-mac", "attack:arp-poison", "attack:vlan-double-tag",
                 "attack:broadcast"):
        assert any(r.status == "fail" and r.metrics["verdict"] == "LEAK" for r in by_kind[kind]), kind
    poison = [r for r in by_kind["attack:arp-poison"] if "neighbour_entry_poisoned" in r.metrics]
    assert any(r.metrics["neighbour_entry_poisoned"] for r in poison)
    # GTP-U: the UPF's own checks hold without the switches; GTP-U from a UE's own link is the switches' to stop
    assert by_kind["attack:gtpu-teid"] and all(r.status == "pass" for r in by_kind["attack:gtpu-teid"])
    assert any(r.metrics["verdict"] == "LEAK" for r in by_kind["attack:gtpu-non-gnb"])


def test_slicing_has_no_leak_and_no_false_block(network, state_dir):
    rid, res = _probe("slicing")
    assert leftovers(rid, state_dir) == []
    bad = [f"{k}: {r.detail}" for k, r in res.items() if r.status == "fail"]
    assert bad == []
    # the matrix rows + the delivery control: 7 hosts (with the 5G core and the UPF the plan adds; the gNB
    # offers rls and gtpu, the core ngap, the UPF gtpu, pfcp and pfcp-hb: one row more from each other host)
    assert sum(k[0] == "isolation" for k in res) == 84 + 6 + 1
    hb = [k[1] for k in res if k[0] == "isolation" and "pfcp-hb" in k[1]]
    assert len(hb) == 6 and [n for n in hb if "(expect pass)" in n] == [n for n in hb if n.startswith("5gc ->")], hb
    assert res[("isolation", "delivery control")].metrics["ratio"] == 1.0
    assert res[("isolation", "kiosk-01 -> pacs pacs (tcp/104) (expect fail)")].status == "pass"
    assert res[("isolation", "dr-tablet-01 -> pacs pacs (tcp/104) (expect pass)")].metrics["captured_at"] == ["pacs"]


def test_cli_probe_exits_1_on_leaks(network, state_dir, tmp_path):
    from tests.helpers import cli

    r = cli("probe", str(MINIMAL), "--controller-app", "allow-all", "-q", "--no-attacks",
            "--report-dir", str(tmp_path / "rep"), check=False, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "leak(s)" in r.stdout
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["verdict"] == "FAIL"
    assert leftovers(rep["run_id"], state_dir) == []


def test_controller_death_leaks_nothing_and_restart_restores(network, state_dir):
    """Fail secure, probed: with the controller killed the full matrix and attacks find no
    leak (admitted flows keep their rules); after a restart there is still none."""
    from testbed.engine.testbed import Testbed
    from testbed.probe.run import run_probes

    with Testbed.from_file(MINIMAL) as tb:
        rid = tb.run_id
        tb.controller.proc.kill()
        tb.controller.proc.wait(timeout=10)
        dead = [f"{r.kind} {r.name}: {r.detail}" for r in run_probes(tb) if r.status == "fail"]
        assert dead == []
        assert tb.restart_controller(timeout=30) < 30
        after = [f"{r.kind} {r.name}: {r.detail}" for r in run_probes(tb) if r.status == "fail"]
        assert after == []
    assert leftovers(rid, state_dir) == []
