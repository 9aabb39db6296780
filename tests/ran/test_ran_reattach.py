"""Which gNBs a UE may re-attach through, and everything the plan derives from it: the UE's cell list, the
other gNB's and the UPF's configs, the grants; the UE's cell reselection; the drill's judgement."""
from __future__ import annotations

from typing import Any

import pytest

from testbed.ran import agents
from testbed.ran.network import infra_grants, run_policy
from testbed.ran.plan import ran_plan
from testbed.topology.loader import TopologyError
from tests.ran.conftest import mec_topology

SECOND = "- {name: gnb-1b, kind: gnb, site: clinic-1}"
SECOND_LINK = "- {endpoints: [gnb-1b, sw-1]}"


def _two_gnbs(ran: str = ""):
    return mec_topology(extra_nodes=SECOND, extra_links=SECOND_LINK, ran=ran)


def test_by_default_a_ue_may_use_every_other_gnb_of_its_site():
    plan = ran_plan(_two_gnbs())
    assert plan.subscriber("ue-1").gnb == "gnb-1" and plan.subscriber("ue-1").fallback_gnbs == ("gnb-1b",)
    assert plan.subscriber("ue-2").fallback_gnbs == ()  # clinic-2 has one gNB
    assert ran_plan(mec_topology()).subscriber("ue-1").fallback_gnbs == ()


def test_a_binding_lists_them_or_none():
    plan = ran_plan(_two_gnbs("ran:\n  ues: [{ue: ue-1, gnb: gnb-1, gnbs: []}, {ue: ue-2, gnb: gnb-2, "
                              "gnbs: [gnb-1b, gnb-1]}]"))
    assert plan.subscriber("ue-1").fallback_gnbs == ()
    assert plan.subscriber("ue-2").cells == ("gnb-2", "gnb-1b", "gnb-1")  # a neighbour cell, in its order


@pytest.mark.parametrize("gnbs, message", [
    ("[gnb-9]", "unknown node 'gnb-9'"),
    ("[emr]", "'emr' is not a node of kind gnb"),
    ("[gnb-1]", "listed twice"),
    ("[gnb-2, gnb-2]", "listed twice"),
])
def test_a_wrong_gnb_list_is_refused(gnbs, message):
    with pytest.raises(TopologyError) as e:
        _two_gnbs(f"ran:\n  ues: [{{ue: ue-1, gnb: gnb-1, gnbs: {gnbs}}}]")
    assert message in str(e.value)


def test_the_other_gnb_accepts_the_ue_and_the_upf_knows_it():
    topo = _two_gnbs()
    plan = ran_plan(topo)
    addrs = {k: str(v) for k, v in agents.node_addresses(topo).items()}
    configs = {(a.program, a.node): a.config for a in agents.agents(topo, plan, addrs)}
    ue = configs[("ue", "ue-1")]
    assert ue["gnb"]["name"] == "gnb-1" and [c["name"] for c in ue["fallback_gnbs"]] == ["gnb-1b"]
    assert ue["fallback_gnbs"][0]["address"] == addrs["gnb-1b"]
    assert ue["timers"]["link_timeout"] < 5.0  # it notices the loss quickly: it has somewhere to go
    assert "timers" not in configs[("ue", "ue-2")]
    planned = {u["name"]: u for u in configs[("gnb", "gnb-1b")]["ues"]}
    own = {u["name"]: u for u in configs[("gnb", "gnb-1")]["ues"]}
    assert set(planned) == {"ue-1"} and planned["ue-1"]["dl_teids"] == own["ue-1"]["dl_teids"]
    for s in plan.subscriber("ue-1").sessions:
        assert addrs["gnb-1b"] in configs[("upf", s.upf)]["gnbs"]


def test_the_grants_let_the_ue_reach_the_other_gnb_and_that_gnb_its_upfs():
    plan = ran_plan(_two_gnbs())
    grants = {(g.src, g.dst, g.service) for g in infra_grants(plan)}
    assert ("ue-1", "gnb-1b", "rls") in grants and ("ue-2", "gnb-1b", "rls") not in grants
    for s in plan.subscriber("ue-1").sessions:
        assert {("gnb-1b", s.upf, "gtpu"), (s.upf, "gnb-1b", "gtpu")} <= grants
    assert ("gnb-1b", plan.core.name, "ngap") in grants
    pol = run_policy(_two_gnbs(), plan)
    assert ("ue-1", "gnb-1b") in pol.pairs() and ("ue-2", "gnb-1b") not in pol.pairs()


class _Radio:
    def __init__(self) -> None:
        self.sent: list[tuple[int, tuple[str, int]]] = []
        self.gnb = ("10.0.0.1", 4997)
        self.sock = None

    def send(self, msg_type: int, payload: bytes = b"", psi: int = 0) -> None:
        self.sent.append((msg_type, self.gnb))

    def retarget(self, gnb: tuple[str, int]) -> None:
        self.gnb = gnb


class _Loop:
    def every(self, *_a: Any) -> None: ...
    def call_later(self, *_a: Any) -> None: return None
    def cancel(self, *_a: Any) -> None: ...
    def add_reader(self, *_a: Any) -> None: ...


class _Status:
    dirty = False

    def maybe_write(self, *_a: Any, **_k: Any) -> None: ...


def _ue(monkeypatch, fallbacks: list[dict]):
    from testbed.ran import ue as ue_mod

    radio = _Radio()
    monkeypatch.setattr(ue_mod, "UeRadio", lambda *a, **k: radio)
    cfg = {"name": "ue-1", "supi": "imsi-460000000000001", "ue_id": 1, "address": "10.0.0.9",
           "gnb": {"name": "gnb-1", "address": "10.0.0.1"}, "fallback_gnbs": fallbacks, "registration": "7e00",
           "timers": {"heartbeat": 0.5, "link_timeout": 1.5},
           "sessions": [{"psi": 1, "slice": "clinical", "request": "00", "tun": "uesimtun0"}]}
    events: list[tuple[str, dict]] = []
    return ue_mod.Ue(cfg, lambda ev, **kw: events.append((ev, kw)), _Status(), _Loop()), radio, events


def test_a_ue_turns_to_its_next_gnb_when_its_own_falls_silent_and_round_again(monkeypatch):
    from testbed.ran import rls, ue as ue_mod

    ue, radio, events = _ue(monkeypatch, [{"name": "gnb-1b", "address": "10.0.0.2"}])
    ue.on_control(rls.Header(rls.HEARTBEAT_ACK, 0, 1), b"")
    assert ue.link_up and ue.state == "registering"
    clock = [ue.last_ack]
    monkeypatch.setattr(ue_mod.time, "monotonic", lambda: clock[0])
    clock[0] += 1.0
    ue.on_heartbeat_timer()
    assert radio.gnb == ("10.0.0.1", 4997)  # within the link timeout: stays
    clock[0] += 1.0
    ue.on_heartbeat_timer()
    assert radio.gnb == ("10.0.0.2", 4997) and radio.sent[-1] == (rls.HEARTBEAT, ("10.0.0.2", 4997))
    assert ue.state == "searching" and ue.counters["link_losses"] == 1
    clock[0] += 2.0  # the other is silent too: back to the first
    ue.on_heartbeat_timer()
    assert radio.gnb == ("10.0.0.1", 4997) and ue.counters["cell_reselections"] == 2
    assert [kw["new"] for ev, kw in events if ev == "cell-reselect"] == ["gnb-1b", "gnb-1"]


def test_a_release_sends_the_ue_to_the_next_gnb_and_a_lone_ue_stays(monkeypatch):
    from testbed.ran import rls

    ue, radio, _ = _ue(monkeypatch, [{"name": "gnb-1b", "address": "10.0.0.2"}])
    ue.on_control(rls.Header(rls.HEARTBEAT_ACK, 0, 1), b"")
    ue.on_control(rls.Header(rls.RELEASE, 0, 1), b"")
    assert radio.gnb == ("10.0.0.2", 4997) and ue.cells[ue.cell][0] == "gnb-1b"
    lone, radio2, _ = _ue(monkeypatch, [])
    lone.on_control(rls.Header(rls.HEARTBEAT_ACK, 0, 1), b"")
    lone.on_control(rls.Header(rls.RELEASE, 0, 1), b"")
    assert radio2.gnb == ("10.0.0.1", 4997) and lone.counters["cell_reselections"] == 0


def test_the_drill_judges_the_reattach_by_the_flows_of_the_ues_that_moved():
    from testbed.checks.reattach import judge, line

    rows = [{"ue": "ue-1", "fallbacks": ["gnb-1b"], "gnb": "gnb-1b", "sessions_lost": 2,
             "sessions_reestablished": 2, "registered_s": 1.4, "sessions_back_s": 1.5, "before_restore": True}]
    flows = [{"src": "ue-1", "dst": "emr", "back_s": 1.6}, {"src": "ue-1", "dst": "gnb-1", "back_s": 6.2},
             {"src": "ue-2", "dst": "emr", "back_s": 7.0}]
    bad, m = judge(rows, flows, 6.0, "gnb-1")
    assert not bad and m["flows_back_s_max"] == 1.6 and m["flows"] == 1 and m["sessions_reestablished"] == 2
    assert "gnb-1b" in line(m) and "2/2 sessions" in line(m)
    late = [dict(flows[0], back_s=6.5)]
    assert "not back through the other gNB" in judge(rows, late, 6.0, "gnb-1")[0][0]
    stuck = [dict(rows[0], gnb=None, before_restore=False)]
    assert "did not re-attach" in judge(stuck, flows, 6.0, "gnb-1")[0][0]
    assert "nothing measured" in judge(rows, flows[1:2], 6.0, "gnb-1")[0][0]


def test_the_sessions_a_lost_link_takes_down_are_counted(monkeypatch):
    from testbed.ran import rls

    ue, _, _ = _ue(monkeypatch, [{"name": "gnb-1b", "address": "10.0.0.2"}])
    ue.on_control(rls.Header(rls.HEARTBEAT_ACK, 0, 1), b"")
    ue.sessions[1].state = "active"
    ue.on_control(rls.Header(rls.RELEASE, 0, 1), b"")
    assert ue.counters["sessions_lost"] == 1 and ue.sessions[1].state == "idle"
    ue.on_control(rls.Header(rls.RELEASE, 0, 1), b"")  # nothing active any more: nothing more lost
    assert ue.counters["sessions_lost"] == 1
