"""Switch-to-switch links are OVS patch ports; cut or impaired live, they become veth pairs on the same ports.

Measured on the wire (ping through the bridges) and in OVS (the ports' type and OpenFlow numbers), with
the CLI from another shell as a user would drive a running alliance.
"""
from __future__ import annotations

import re
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from testbed import Testbed
from testbed.topology.loader import parse_text

from tests.helpers import built, cli

TOPO = """
name: patched
nodes:
  - {name: s1, kind: switch}
  - {name: s2, kind: switch}
  - {name: s3, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
links:
  - {endpoints: [a, s1]}
  - {endpoints: [s1, s2]}
  - {endpoints: [s2, s3]}
  - {endpoints: [b, s3]}
"""


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    yield from built(TOPO, "patched.yaml", tmp_path_factory)


def _ovs(*args: str) -> str:
    return subprocess.run(["ovs-vsctl", *args], capture_output=True, text=True, check=True).stdout.strip()


def _ends(tb: Testbed, key: str) -> list[str]:
    return tb.manifest.wires[key]


def _received(tb: Testbed, n: int = 5) -> int:
    out = tb.node("a").cmd(f"ping -n -c {n} -i 0.1 -W 1 {tb.node('b').ip}")
    m = re.search(r"(\d+) received", out)
    return int(m.group(1)) if m else 0


def _median_rtt(tb: Testbed) -> float:
    out = tb.node("a").cmd(f"ping -n -c 20 -i 0.05 -W 2 {tb.node('b').ip}")
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
    assert len(rtts) >= 18, out
    return statistics.median(rtts[2:])


def test_trunks_are_patch_ports_with_no_kernel_interface_and_carry_traffic(tb):
    for key in ("s1:s2", "s2:s3"):
        assert key in tb.manifest.patches
        for intf in _ends(tb, key):
            assert _ovs("get", "Interface", intf, "type") == "patch"
            assert not Path(f"/sys/class/net/{intf}").exists()
    for intf in _ends(tb, "a:s1"):  # a host's link stays a veth pair
        assert _ovs("get", "Interface", intf, "type") == '""'
    assert _received(tb) == 5


def test_a_cut_from_another_shell_makes_a_veth_pair_on_the_same_ports(tb):
    ends = _ends(tb, "s1:s2")
    ports = [_ovs("get", "Interface", i, "ofport") for i in ends]
    cli("link", "set", "--run", tb.run_id, "s1:s2", "down")
    assert _received(tb) == 0
    assert [_ovs("get", "Interface", i, "ofport") for i in ends] == ports  # the rules installed still apply
    assert all(_ovs("get", "Interface", i, "type") == '""' for i in ends)
    assert all(Path(f"/sys/class/net/{i}").exists() for i in ends)
    cli("link", "set", "--run", tb.run_id, "s1:s2", "up")
    assert _received(tb) == 5


def test_a_patch_link_impaired_live_delays_both_ways(tb):
    base = _median_rtt(tb)
    tb.set_link("s2:s3", ["delay=20ms"])
    try:
        assert "s2:s3" not in tb.manifest.patches
        assert abs(_median_rtt(tb) - base - 40.0) <= 2.0
    finally:
        tb.set_link("s2:s3", ["delay=0ms"])


def test_up_leaves_a_patch_link_patched_and_veth_makes_it_one_to_capture_on():
    with Testbed(parse_text(TOPO, "patched-up.yaml")) as tb:
        tb.set_link("s1:s2", ["up"])
        assert "s1:s2" in tb.manifest.patches
        assert _received(tb) == 5
        out = cli("link", "veth", "--run", tb.run_id, "s2:s1").stdout
        ends = _ends(tb, "s1:s2")
        assert all(i in out for i in ends), out
        dump = subprocess.Popen(["tcpdump", "-n", "-l", "-c", "3", "-i", ends[0], "icmp"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            time.sleep(1)
            assert _received(tb) == 5  # still passing frames, now on a wire tcpdump sees
            seen = dump.communicate(timeout=10)[0]
        finally:
            dump.kill()
        assert seen.count("ICMP echo") == 3, seen


def test_a_chain_longer_than_one_translation_crosses_still_carries_traffic():
    """70 switches in a row: Open vSwitch drops a frame after 64 patch crossings in one pass (measured: 66
    bridges in a row drop every frame), so the chain is patched in groups joined by veth pairs."""
    n = 70
    nodes = "\n".join(f"  - {{name: s{i}, kind: switch}}" for i in range(n))
    trunks = "\n".join(f"  - {{endpoints: [s{i}, s{i + 1}]}}" for i in range(n - 1))
    topo = (f"name: long\nnodes:\n{nodes}\n  - {{name: a, kind: host}}\n  - {{name: b, kind: host}}\nlinks:\n"
            f"  - {{endpoints: [a, s0]}}\n{trunks}\n  - {{endpoints: [b, s{n - 1}]}}\n")
    with Testbed(parse_text(topo, "long.yaml")) as tb:
        assert n - 1 - len(tb.manifest.patches) == 1  # one veth trunk between a group of 48 and one of 22
        assert _received(tb) == 5
