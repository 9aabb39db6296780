"""The slicing plan's rules themselves: cookies, meters, grants and revocations, what OVS accepts,
how a dump reads back; and the whole reference topology through the fake network, both ways.

test_flows.py checks connections frame by frame on the same fake network.
"""
from __future__ import annotations

import pytest

from testbed.openflow.layout import make_layout
from testbed.slicing import conntrack as ct
from testbed.slicing.cookies import COOKIE_MAGIC, cookie, decode_cookie
from testbed.slicing.flows import ETH_IP
from testbed.slicing.inspect import label, parse_dump_flows
from testbed.slicing.plan import controller_plan
from testbed.slicing.policy import compile_policy
from testbed.slicing.verify import verify_plan, verify_rule
from tests.slicing.fakenet import DOC, EMR, KIOSK, PACS, Net


def test_cookies_name_the_slice_of_every_rule(net):
    names = {s["id"]: n for n, s in net.plan["slices"].items()}
    for rules in net.plan["switches"].values():
        for r in rules:
            dec = decode_cookie(r["cookie"])
            assert dec is not None and dec[0] in names
    assert decode_cookie(cookie(5, "arp", 7)) == (5, "arp")
    assert decode_cookie(cookie(5, "state")) == (5, "state")
    assert decode_cookie(0x1234) is None
    assert net.plan["drop_cookie"] >> 48 == COOKIE_MAGIC


def test_grant_and_revoke_change_the_rules(minimal):
    granted = Net(minimal, extra={"clinical": [KIOSK]})
    assert granted.connect(KIOSK, PACS, 104)
    revoked = Net(minimal, revoked={"clinical": [DOC]})
    assert revoked.tcp(DOC, PACS, 104) == []
    assert revoked.connect(KIOSK, EMR, 443)  # other slices untouched
    assert revoked.arp_request(DOC, revoked.ip[PACS]) == []


def test_meters_per_rated_slice(reference):
    net = Net(reference)
    rated = {s.name: s.rate for s in reference.slices if s.rate}
    assert rated, "the reference topology rates its slices"
    ids = {n: s["meter_id"] for n, s in net.plan["slices"].items()}
    seen = set()
    for dp, meters in net.plan["meters"].items():
        for m in meters:
            assert m["rate_kbps"] == rated[m["slice"]] // 1000 and m["meter_id"] == ids[m["slice"]]
            seen.add(m["slice"])
        used = {r["meter"] for r in net.plan["switches"][dp] if r.get("meter")}
        assert used == {m["meter_id"] for m in meters}  # every meter a rule uses exists on that switch
    assert seen == set(rated)


def test_reference_topology_both_directions(reference):
    net = Net(reference)
    pol = compile_policy(reference)
    for i, g in enumerate(pol.grants):
        sport = 20000 + i
        if g.proto == "tcp":
            assert net.connect(g.src, g.dst, g.port, sport=sport), g
            assert net.tcp(g.dst, g.src, 22, sport=g.port) == [], g  # the reverse direction
        else:
            assert net.to(g.src, net.udp(g.src, g.dst, sport, g.port)) == [g.dst], g
            assert net.to(g.dst, net.udp(g.dst, g.src, g.port, sport)) == [g.src], g
            assert net.to(g.dst, net.udp(g.dst, g.src, g.port, 53)) == [], g
        assert net.ping(g.src, g.dst, ident=i) == [g.dst], g
    pairs = set(pol.pairs())
    hosts = sorted(net.w.hosts)
    # every non-granted ordered pair among a sample of hosts is blocked, ARP included
    sample = hosts[::5]
    for a in sample:
        for b in sample:
            if a != b and (a, b) not in pairs:
                assert net.ping(a, b) == [], (a, b)
                if (b, a) not in pairs:
                    assert net.arp_request(a, net.ip[b]) == [], (a, b)


@pytest.mark.parametrize("stateless_", [False, True], ids=["stateful", "stateless"])
def test_every_rule_is_one_ovs_accepts_and_the_pipeline_is_sound(reference, minimal, stateless_):
    for topo in (minimal, reference):
        plan = Net(topo, stateless=stateless_).plan
        assert verify_plan(plan) == []
        tables = {r["table"] for rules in plan["switches"].values() for r in rules}
        assert tables <= set(plan["tables"])
    assert plan["frag_mode"] == ("normal" if stateless_ else "nx-match")


def test_verify_catches_what_ovs_refuses_or_what_leaks():
    ip = {"eth_type": ETH_IP}
    assert verify_rule({"table": 0, "priority": 1, "match": {}, "actions": [{"set_field": {"ip_dscp": 18}}]})
    assert verify_rule({"table": 0, "priority": 1, "match": {"tcp_dst": 443, **ip}, "actions": []})
    assert verify_rule({"table": 0, "priority": 1, "match": ip, "actions": [{"ct": {"zone": 1}}]})
    assert verify_rule({"table": 0, "priority": 1, "match": ip, "goto": 3,
                        "actions": [{"ct": {"zone": 1, "table": 1}}]})
    assert verify_rule({"table": 3, "priority": 1, "match": {}, "actions": [], "goto": 1})
    leaky = {"switches": {"1": [
        {"table": 0, "priority": 1, "match": ip, "actions": [{"ct": {"zone": 1, "table": 1}}]},
        {"table": 1, "priority": 1, "match": {**ip, "ct_state": ct.state("+trk+est")}, "actions": [], "goto": 3}]}}
    assert any("+trk-inv" in p for p in verify_plan(leaky))
    overlapping = {"switches": {"1": [
        {"table": 0, "priority": 5, "match": {"in_port": 1, **ip, "ip_proto": 6, "tcp_dst": 443}, "actions": []},
        {"table": 0, "priority": 5, "match": {"in_port": 1, **ip, "ip_proto": 6}, "actions": [], "goto": 3},
        {"table": 0, "priority": 5, "match": {"in_port": 2, **ip, "ip_proto": 6}, "actions": []}]}}
    assert len(verify_plan(overlapping)) == 1


def test_inspect_parses_and_names_an_ovs_dump(net):
    dp = net.w.dpids["clinic-sw"]
    mac, ip = net.mac[DOC], net.ip[DOC]
    sid = net.plan["slices"]["clinical"]["id"]
    c, s = cookie(sid, "service"), cookie(sid, "state")
    text = (
        "OFPST_FLOW reply (OF1.3) (xid=0x2):\n"
        f" cookie={c:#x}, duration=5.097s, table=1, n_packets=3, n_bytes=222, priority=200,"
        f"ct_state=+new-est-rel-inv+trk,tcp,in_port=3,nw_src={ip},tp_dst=443,tcp_flags=-fin+syn-rst-ack "
        f"actions=set_field:18->ip_dscp,ct(commit,zone=16290,exec(set_field:{sid:#x}->ct_mark),table=2)\n"
        f" cookie={s:#x}, duration=5.097s, table=1, n_packets=9, n_bytes=900, priority=150,"
        f"ct_state=-rel+est-inv+trk,ct_mark={sid:#x},ip actions=set_field:18->ip_dscp,goto_table:3\n"
        f" cookie=0x0, duration=1s, table=3, n_packets=0, n_bytes=0, priority=0,vlan_tci=0x0000/0x1fff,"
        f"dl_src={mac} actions=drop\n"
    )
    rows = label(parse_dump_flows(text), net.plan, dp)
    assert [(r.slice, r.kind, r.table, r.priority, r.packets) for r in rows] == [
        ("clinical", "service", 1, 200, 3), ("clinical", "state", 1, 150, 9), ("(foreign)", "?", 3, 0, 0)]
    assert rows[0].match == ("ct_state=+new-est-rel-inv+trk,tcp,in_port=3(dr-tablet-01),nw_src=dr-tablet-01,"
                             "tp_dst=443,tcp_flags=-fin+syn-rst-ack")
    assert rows[0].actions == ("set_field:18->ip_dscp,"
                               f"ct(commit,zone=16290,exec(set_field:{sid:#x}(clinical)->ct_mark),table=2)")
    assert rows[1].match == f"ct_state=-rel+est-inv+trk,ct_mark={sid:#x}(clinical),ip"
    assert rows[2].match == "dl_src=dr-tablet-01"


def test_plain_forwarding_without_slices(write_yaml):
    from testbed.topology.loader import load

    topo = load(write_yaml("""
        name: flat
        nodes:
          - {name: sw, kind: switch}
          - {name: a, kind: host}
          - {name: b, kind: host}
        links:
          - {endpoints: [a, sw]}
          - {endpoints: [b, sw]}
    """))
    plan = controller_plan(topo, make_layout(topo, "0000"))
    assert plan["mode"] == "forwarding" and plan["meters"] == {}
