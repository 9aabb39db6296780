"""Nodes that serve many get a larger CPU weight than a terminal.

Every container is a CPU group of its own; under load a gNB got what one terminal got while carrying its
whole cell, and during the probe (every terminal busy at once, 2 cores) its UEs went 5 s without a
heartbeat answer and dropped their radio link.
"""
from __future__ import annotations

from pathlib import Path

from testbed.engine import docker_node as dn
from tests.ran.conftest import mec_topology


def test_gnbs_upfs_and_the_core_get_the_serving_weight_terminals_and_servers_do_not(tmp_path: Path):
    topo = mec_topology()
    specs = {n.name: dn.spec_for(topo, n, "fffe", tmp_path / "hosts", tmp_path) for n in topo.nodes
             if n.kind != "switch"}
    assert {n for n, s in specs.items() if s.cpu_shares == dn.SERVING_CPU_SHARES} == \
        {"gnb-1", "gnb-2", "upf-central", "upf-edge"}
    assert all(s.cpu_shares is None for n, s in specs.items() if n in ("ue-1", "ue-2", "emr", "cache-1"))
    argv = specs["gnb-1"].run_argv()
    assert argv[argv.index("--cpu-shares") + 1] == str(dn.SERVING_CPU_SHARES)
    assert "--cpu-shares" not in specs["ue-1"].run_argv()


def test_the_core_kind_is_a_serving_role():
    from testbed import kinds

    assert kinds.get("core").ran_role in dn.SERVING_ROLES
