"""`testbed verify` on real switches: the tables read back from OVS are proved clean, and every negative
control is caught with a counterexample that the replay confirms on the wire:
- one grant deleted by hand (`ovs-ofctl del-flows`) is exactly that grant's false block;
- the stateless and allow-all apps leak.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from testbed import Testbed
from testbed.checks.verify import verify
from tests.helpers import cli, minimal_plain

pytestmark = pytest.mark.integration
DOC, EMR = "dr-tablet-01", "emr"


def _bridge(tb, switch: str) -> str:
    return tb.manifest.nodes[switch].internal


def test_installed_tables_verify_clean_and_a_deleted_grant_is_its_false_block(network, state_dir, tmp_path):
    with Testbed.from_file(minimal_plain(tmp_path)) as tb:
        r = cli("verify", "--json", "--run", tb.run_id, check=False, timeout=300)
        doc = json.loads(r.stdout)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert (doc["leaks"], doc["false_blocks"]) == (0, 0) and doc["rules"] > 0
        n = doc["host_ports"]
        assert doc["pairs"] == n * (n - 1)
        # delete the table-1 rule that lets the tablet open EMR (tcp/443) at its edge switch
        doc_ip = str(tb.layout.ips[DOC].ip)
        emr_ip = str(tb.layout.ips[EMR].ip)
        edge = next(sw for sw, rec in tb.manifest.nodes.items() if rec.dpid and subprocess.run(
            ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", rec.internal, f"table=1,tcp,nw_src={doc_ip},nw_dst={emr_ip}"],
            capture_output=True, text=True).stdout.count("tp_dst=443"))
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", _bridge(tb, edge),
                        f"table=1,tcp,nw_src={doc_ip},nw_dst={emr_ip},tp_dst=443"], check=True)
        v = verify(tb)
        c = v.proof.comparison
        assert not c.leaks
        assert {(f.src, f.dst) for f in c.false_blocks} == {(DOC, EMR), (EMR, DOC)}  # the grant and its replies
        fwd = next(f for f in c.false_blocks if f.src == DOC)
        assert fwd.header["tp_dst"] == 443 and fwd.header["tcp_flags"] & 0x02
        assert fwd.replay == "confirmed", fwd.replay_detail  # the granted SYN really is dropped now


@pytest.mark.parametrize("app", ["stateless", "allow-all"])
def test_weaker_apps_leak_and_the_replay_confirms_it(network, state_dir, tmp_path, app):
    with Testbed.from_file(minimal_plain(tmp_path), controller_app=app) as tb:
        v = verify(tb)
    leaks = v.proof.comparison.leaks
    assert leaks, f"{app}: the proof found no leak"
    confirmed = [f for f in leaks if f.replay == "confirmed"]
    assert confirmed, [(f.describe(), f.replay, f.replay_detail) for f in leaks]
    assert v.confirmed == len([f for f in v.findings if f.replay == "confirmed"])


def test_the_readme_example_runs_as_written(network, state_dir):
    """README "Proving isolation for every header": up -d minimal.yaml (5G path and all), verify, down."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "testbed up -d topologies/minimal.yaml\ntestbed verify " in readme
    cli("up", "-d", "topologies/minimal.yaml", timeout=300)
    try:
        r = cli("verify", check=False, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert "verified: 0 leaks, 0 false blocks" in " ".join(r.stdout.split())
    finally:
        cli("down", timeout=300)
