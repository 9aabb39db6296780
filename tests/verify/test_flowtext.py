"""dump-flows text -> plan-form rules: what OVS 3.1 prints for each kind of rule the slicing app installs
(lines copied from a reference run), and a clear refusal of what the model cannot represent."""
from __future__ import annotations

import pytest

from testbed.slicing import conntrack as ct
from testbed.verify.flowtext import OFPP_CONTROLLER, UnsupportedFlow, parse_flows

DUMP = """OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x7462000207000000, duration=19.116s, table=0, n_packets=0, n_bytes=0, priority=200,ip,in_port=3,vlan_tci=0x0000/0x1fff,dl_src=02:7b:00:00:00:01,dl_dst=02:7b:00:00:00:09,nw_src=10.77.0.1,nw_dst=10.45.16.2 actions=ct(table=1,zone=1691)
 cookie=0x746200060100017a, duration=21.555s, table=1, n_packets=0, n_bytes=0, priority=200,ct_state=+new-est-rel-inv+trk,tcp,in_port=3,nw_src=10.77.0.1,nw_dst=10.77.0.5,tp_dst=443,tcp_flags=-fin+syn-rst-ack actions=set_field:18->ip_dscp,ct(commit,table=2,zone=1691,exec(set_field:0x6->ct_mark))
 cookie=0x74620002010000de, duration=21.704s, table=1, n_packets=0, n_bytes=0, priority=200,ct_state=+new-est-rel-inv+trk,udp,in_port=2,nw_src=10.45.16.2,nw_dst=10.77.0.101,tp_dst=5004 actions=meter:2,set_field:18->ip_dscp,ct(commit,table=2,zone=1691,exec(set_field:0x2->ct_mark))
 cookie=0x7462000204000000, duration=21.555s, table=0, n_packets=0, n_bytes=0, priority=200,arp,in_port=3,vlan_tci=0x0000/0x1fff,dl_src=02:7b:00:00:00:01,arp_spa=10.77.0.1,arp_tpa=10.77.0.9,arp_op=1,arp_sha=02:7b:00:00:00:01 actions=set_field:02:7b:00:00:00:09->eth_dst,goto_table:3
 cookie=0x7462000205000000, duration=21.5s, table=1, n_packets=0, n_bytes=0, priority=200,ct_state=+new-est-rel-inv+trk,ip,in_port=3,nw_src=10.77.0.1,nw_dst=10.77.0.9,nw_frag=later actions=ct(commit,table=2,zone=1691,exec(set_field:0x2->ct_mark))
 cookie=0x7462000005000000, duration=19.333s, table=0, n_packets=1, n_bytes=70, priority=100,in_port=1,vlan_tci=0x0000/0x1fff actions=goto_table:3
 cookie=0x7462000006000000, duration=19.333s, table=3, n_packets=13, n_bytes=1345, priority=100,dl_dst=02:7b:00:00:00:66 actions=output:2
 cookie=0x7462000000000000, duration=19.333s, table=2, n_packets=0, n_bytes=0, priority=0 actions=drop
"""


def test_every_kind_of_slicing_rule_reads_back():
    rules = parse_flows(DUMP)
    assert len(rules) == 8
    track, new, udp, arp, frag, trunk, fwd, drop = rules
    assert track["match"] == {"eth_type": 0x800, "in_port": 3, "vlan_vid": [0, 0x1FFF], "eth_src": "02:7b:00:00:00:01",
                              "eth_dst": "02:7b:00:00:00:09", "ipv4_src": "10.77.0.1", "ipv4_dst": "10.45.16.2"}
    assert track["actions"] == [{"ct": {"commit": False, "table": 1, "zone": 1691}}]
    assert new["match"]["ct_state"] == ct.state("+trk+new-est-rel-inv")
    assert new["match"]["tcp_flags"] == [ct.SYN, ct.SYN | ct.ACK | ct.FIN | ct.RST]
    assert new["actions"] == [{"set_field": {"ip_dscp": 18}},
                              {"ct": {"commit": True, "table": 2, "zone": 1691, "mark": 6}}]
    assert udp["meter"] == 2 and udp["match"]["ip_proto"] == 17 and udp["match"]["tp_dst"] == 5004
    assert arp["actions"] == [{"set_field": {"eth_dst": "02:7b:00:00:00:09"}}] and arp["goto"] == 3
    assert frag["match"]["ip_frag"] == [ct.FRAG_ANY | ct.FRAG_LATER] * 2
    assert trunk["goto"] == 3 and fwd["actions"] == [{"output": 2}] and fwd["table"] == 3
    assert drop == {"table": 2, "priority": 0, "match": {}, "actions": [], "cookie": 0x7462000000000000}


def test_special_ports_and_old_style_actions():
    line = (" cookie=0x0, duration=1s, table=0, n_packets=0, n_bytes=0, priority=5,in_port=1 "
            "actions=mod_nw_tos:72,CONTROLLER:65535,NORMAL\n")
    r = parse_flows(line)[0]
    assert r["actions"][0] == {"set_field": {"ip_dscp": 18}}
    assert r["actions"][1] == {"output": OFPP_CONTROLLER}


@pytest.mark.parametrize("line, what", [
    ("priority=5,ipv6 actions=drop", "ipv6"),
    ("priority=5,ip,reg0=1 actions=drop", "reg0"),
    ("priority=5,ip actions=resubmit(,3)", "resubmit"),
    ("priority=5,ip actions=ct(commit,nat(src=1.2.3.4))", "nat"),
])
def test_what_the_model_cannot_represent_is_refused_not_skipped(line, what):
    with pytest.raises(UnsupportedFlow, match=what.split("(")[0]):
        parse_flows(" cookie=0x0, duration=1s, table=0, n_packets=0, n_bytes=0, " + line)
