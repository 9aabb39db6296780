"""Fault drills without root: what a drill watches, and how its pings are read (testbed.checks.faults)."""
from __future__ import annotations

from types import SimpleNamespace

from testbed.checks.faults import (LATE_S, Drill, _late, affected_pairs, late_sends, measure, parse_ping,
                                   start_pingers)
from testbed.openflow.layout import make_layout
from testbed.ran.network import prepare, run_policy
from testbed.topology.model import Fault

PING = """PING 10.77.0.1 (10.77.0.1) 56(84) bytes of data.
[100.000] 64 bytes from 10.77.0.1: icmp_seq=1 ttl=63 time=1.0 ms
[100.100] no answer yet for icmp_seq=2
[101.900] 64 bytes from 10.77.0.1: icmp_seq=3 ttl=63 time=1700 ms
[102.000] 64 bytes from 10.77.0.1: icmp_seq=5 ttl=63 time=0.5 ms
"""


def test_late_answers_and_unsent_echoes_count_as_lost():
    echoes = parse_ping(PING)
    assert [ok for _, ok in echoes] == [True, False, False, False, True]  # seq 3 answered after LATE_S; 4 never sent
    assert LATE_S < 1.7
    assert abs(echoes[2][0] - 100.2) < 1e-6  # when it was sent: the reply's time minus its round trip


def test_measure_reads_outage_and_recovery_inside_the_drill_window_only():
    echoes = [(t / 10, not (20 <= t < 50)) for t in range(0, 120)]  # answered, except 2.0-5.0 s
    echoes += [(30.0, False)]  # long after the window: not this drill's
    m = measure(echoes, t_inject=2.0, t_restore=4.5)
    assert m["lost"] == 30 and m["outage_s"] == 3.0 and m["recovery_s"] == 0.5 and m["answered_after_restore"]


def test_lost_echoes_that_were_answered_late_are_told_apart():
    """A queue on a loaded host answers late; a cut never does: the drill's message says which."""
    late = late_sends(PING)
    assert late == [100.2]  # seq 3: sent at 100.2, answered 1.7 s later
    m = measure(parse_ping(PING), t_inject=100.0, t_restore=100.5, late=late)
    assert m["lost"] == 3 and m["late"] == 1
    assert "1 of them answered after more than 1 s" in _late(m)
    assert measure(parse_ping(PING), t_inject=100.0, t_restore=100.5)["late"] == 0 and _late({"late": 0}) == ""
    assert late_sends(PING.replace("time=1700 ms", "time=700 ms")) == []


def _tb(topo, run_id="ab12"):
    topo, plan = prepare(topo, run_id)
    return SimpleNamespace(topo=topo, ran=plan, layout=make_layout(topo, run_id))


def test_a_cut_ue_link_affects_its_flows_and_spares_the_others(minimal):
    tb = _tb(minimal)
    pairs = run_policy(tb.topo, tb.ran).pairs()
    hit, spared = affected_pairs(tb, Fault(name="f", type="link-down", target="kiosk-01:clinic-sw"), pairs)
    assert {s for s, _ in hit} == {"kiosk-01"} and ("kiosk-01", "emr") in hit
    assert ("dr-tablet-01", "emr") in spared


def test_a_lost_upf_cuts_every_session_flow_through_it(minimal):
    """A 5G UE's flow crosses its radio link, N3 and N6: losing the UPF cuts it, though neither end is the UPF."""
    tb = _tb(minimal)
    pairs = run_policy(tb.topo, tb.ran).pairs()
    hit, _ = affected_pairs(tb, Fault(name="f", type="node-down", target="upf"), pairs)
    assert {("dr-tablet-01", "emr"), ("dr-tablet-01", "pacs"), ("kiosk-01", "emr")} <= set(hit)
    assert ("dr-tablet-01", "gnb-clinic") not in hit  # the radio link alone does not cross the UPF


def test_upf_fallback_expects_the_mec_sessions_and_fails_late_flows_and_follower_errors():
    from testbed.checks import upffallback
    from tests.ran.conftest import mec_topology

    tb = _tb(mec_topology())
    lost = Fault(name="edge", type="node-down", target="upf-edge", duration=5000)
    assert upffallback.expected(tb, lost) == {"ue-1/uesimtun1": "upf-central"}  # its imaging session
    assert upffallback.expected(tb, Fault(name="c", type="node-down", target="upf-central", duration=5000)) == {}
    row = {"session": "ue-1/uesimtun1", "fallback": "upf-central", "now_on": "upf-edge", "upf_lost_s": 1.3,
           "moved_s": 1.3, "gnb_confirmed_s": 1.31, "network_followed_s": 1.5, "moved_home_s": 5.3,
           "network_home_s": 5.5}
    flows = [{"src": "ue-1", "dst": "cache-1", "back_s": 1.6}, {"src": "ue-2", "dst": "emr", "back_s": None}]
    bad, m = upffallback.judge([row], flows, 5.0, [])
    assert bad == [] and m["flows"] == 1 and m["flows_back_s_max"] == 1.6 and m["network_followed_s_max"] == 1.5
    assert "fell back to upf-central" in upffallback.line(m)
    late = [{"src": "ue-1", "dst": "cache-1", "back_s": 5.4}]
    assert any("not back through the central UPF" in b for b in upffallback.judge([row], late, 5.0, [])[0])
    unfollowed = dict(row, network_followed_s=None)
    assert any("did not fall back" in b for b in upffallback.judge([unfollowed], flows, 5.0, [])[0])
    assert any("following the core" in b for b in upffallback.judge([row], flows, 5.0, ["timeout"])[0])
    assert any("nothing measured" in b for b in upffallback.judge([row], [], 5.0, [])[0])


def test_drills_watching_the_same_flow_share_one_pinger():
    """Eight drills with the same untouched flows start one pinger per flow, and each drill gets its own
    flows' pingers in its own order (affected first, then its control flows)."""
    f = Fault(name="f", type="link-down", target="s1:s2")
    ctl = [("nc-00", "vdi-02"), ("dt-01", "vdi-02")]
    drills = [Drill(f, [("ue-a", "emr")], ctl), Drill(f, [("ue-b", "emr"), ("ue-a", "emr")], ctl),
              Drill(f, [], ctl[::-1])]
    started: list[tuple[str, str]] = []

    def start(s, t):
        started.append((s, t))
        return SimpleNamespace(src=s, dst=t)

    shared, per_drill = start_pingers(drills, start)
    assert sorted(started) == sorted({("ue-a", "emr"), ("ue-b", "emr"), *ctl}) and len(started) == 4
    for d in drills:
        assert [(p.src, p.dst) for p in per_drill[id(d)]] == d.affected + d.control
    assert per_drill[id(drills[0])][0] is per_drill[id(drills[1])][1] is shared[("ue-a", "emr")]
