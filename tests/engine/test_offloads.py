"""Which link ends keep TCP segmentation offload: only unshaped links, and only when OVS runs userspace TSO,
whose being in force is read from the daemon's log (set after the daemon started, it is a broken mix)."""
from types import SimpleNamespace

import pytest

from testbed.engine.hostconfig import segmenting_ends
from testbed.netdev import offloads_command, relay_offloads
from testbed.openflow.layout import make_layout
from testbed.platform import START_LINE, TSO_LINE, tso_state
from testbed.topology.loader import parse_text

TOPO = """
name: offl
nodes:
  - {name: s1, kind: switch}
  - {name: s2, kind: switch}
  - {name: s3, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
  - {name: c, kind: host}
  - {name: d, kind: host}
links:
  - {endpoints: [a, s1]}
  - {endpoints: [s1, s2]}
  - {endpoints: [s2, s3], delay: 5ms}
  - {endpoints: [b, s2], bw: 10Mbit}
  - {endpoints: [c, s3], mtu: 1400}
  - {endpoints: [d, s3], b_to_a: {loss: 1%}}
  - {endpoints: [s1, s3], delay: 5ms, jitter: 1ms}
"""


def _tb(tso: bool) -> SimpleNamespace:
    topo = parse_text(TOPO, "offl.yaml")
    return SimpleNamespace(manifest=SimpleNamespace(tso=tso), layout=make_layout(topo, "t1"))


def _ends(tb: SimpleNamespace, a: str, b: str) -> set[str]:
    ln = next(x for x in tb.layout.links if {x.a, x.b} == {a, b})
    return {ln.intf_a, ln.intf_b}


def test_only_unshaped_links_keep_segmentation_with_tso():
    """A constant delay acts on a 64 KB frame as on its packets: that link keeps frames; jitter, a rate, an
    MTU or loss in either direction need packets."""
    tb = _tb(True)
    ends = segmenting_ends(tb)
    assert _ends(tb, "a", "s1") | _ends(tb, "s1", "s2") | _ends(tb, "s2", "s3") == ends
    for shaped in (("b", "s2"), ("c", "s3"), ("d", "s3"), ("s1", "s3")):
        assert not _ends(tb, *shaped) & ends, shaped


def test_without_tso_every_end_runs_offloads_off():
    assert segmenting_ends(_tb(False)) == set()


def test_a_relay_keeps_segmentation_only_on_a_link_that_keeps_frames():
    kept = dict(relay_offloads(True))
    assert kept["tso"] == kept["gso"] == kept["tx"] == "on"
    assert kept["gro"] == kept["rx"] == kept["lro"] == kept["tx-udp-segmentation"] == "off"
    off = dict(relay_offloads(False))
    assert set(off.values()) == {"off"} and {"tso", "gso", "tx", "gro"} <= set(off)


def test_the_commands():
    off = offloads_command("x0", False)
    assert off.startswith("ethtool -K x0 ") and "tso off" in off and "gso off" in off and "tx off" in off
    on = offloads_command("x0", True)
    assert "tso on" in on and "tx on" in on and "tx-udp-segmentation off" in on and "tso off" not in on


def _log(*lines: str) -> list[str]:
    """Log lines of one daemon process: its sequence numbers start at 1 (a '<new>' entry restarts them)."""
    out, seq = [], 0
    for ln in lines:
        seq = 0 if ln == "<new>" else seq
        if ln != "<new>":
            seq += 1
            out.append(f"2026-11-26T15:51:52.000Z|{seq:05d}|{ln}")
    return out


START = START_LINE[1:] + " 3.1.0"


@pytest.mark.parametrize("lines, expected", [
    # started with it: its block has the TSO line before the start line (bridges re-added in between)
    (_log("x|INFO|old daemon", "<new>", "vlog|INFO|opened", TSO_LINE, *["bridge|INFO|added"] * 60, START), True),
    # turned on at run time: only after the start
    (_log("<new>", "vlog|INFO|opened", START, "bridge|INFO|added", TSO_LINE), None),
    (_log("<new>", "vlog|INFO|opened", START, "bridge|INFO|added"), False),
    # an older daemon had it, this one was started without it
    (_log("vlog|INFO|opened", TSO_LINE, START, "x|INFO|stop", "<new>", "vlog|INFO|opened", START), False),
    (_log("<new>", "vlog|INFO|opened", TSO_LINE, START, "x|INFO|runtime", TSO_LINE), True),
])
def test_tso_in_force_only_from_the_daemons_start(lines, expected):
    assert tso_state(lines)[0] is expected
