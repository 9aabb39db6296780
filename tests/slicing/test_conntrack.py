"""Reading the connection tracker (dpctl/dump-conntrack text) and choosing what a revoke ends."""
from __future__ import annotations

from testbed.slicing import conntrack as ct

# Real `ovs-appctl dpctl/dump-conntrack` output of OVS 3.1 (userspace datapath), and `-m` style lines.
DUMP = """\
icmp,orig=(src=10.250.0.1,dst=10.250.0.2,id=6036,type=8,code=0),reply=(src=10.250.0.2,dst=10.250.0.1,id=6036,type=0,code=0),zone=5,mark=3
udp,orig=(src=10.250.0.1,dst=10.250.0.2,sport=42535,dport=5004),reply=(src=10.250.0.2,dst=10.250.0.1,sport=5004,dport=42535),zone=5,mark=3
tcp,orig=(src=10.250.0.1,dst=10.250.0.2,sport=42926,dport=443),reply=(src=10.250.0.2,dst=10.250.0.1,sport=443,dport=42926),zone=5,mark=3,protoinfo=(state=TIME_WAIT)
tcp,orig=(src=10.250.0.1,dst=10.250.0.2,sport=56166,dport=443),reply=(src=10.250.0.2,dst=10.250.0.1,sport=443,dport=56166),id=0,zone=5,status=0,mark=0x4,protoinfo=(state_orig=ESTABLISHED,state_reply=ESTABLISHED)
tcp,orig=(src=10.250.0.3,dst=10.250.0.1,sport=50000,dport=104),reply=(src=10.250.0.1,dst=10.250.0.3,sport=104,dport=50000),zone=5,mark=3,protoinfo=(state=ESTABLISHED)
tcp,orig=(src=fd00::1,dst=fd00::2,sport=1,dport=2),reply=(src=fd00::2,dst=fd00::1,sport=2,dport=1),zone=5
"""


def test_parse_dump_conntrack():
    conns = ct.parse_conntrack(DUMP)
    assert len(conns) == 5  # the IPv6 entry is skipped
    icmp, udp, tcp, tcp2, other = conns
    assert (icmp.proto, icmp.icmp_id, icmp.icmp_type, icmp.zone, icmp.mark) == ("icmp", 6036, 8, 5, 3)
    assert (udp.sport, udp.dport) == (42535, 5004)
    assert tcp.tcp_state == "TIME_WAIT" and tcp2.mark == 4 and tcp2.tcp_state == "ESTABLISHED"
    assert other.src == "10.250.0.3"


def test_flush_tuples_are_complete():
    icmp, udp, tcp, *_ = ct.parse_conntrack(DUMP)
    assert icmp.tuple() == ("ct_nw_src=10.250.0.1,ct_nw_dst=10.250.0.2,ct_nw_proto=1,"
                            "icmp_id=6036,icmp_type=8,icmp_code=0")
    assert tcp.tuple() == "ct_nw_src=10.250.0.1,ct_nw_dst=10.250.0.2,ct_nw_proto=6,ct_tp_src=42926,ct_tp_dst=443"


def test_a_revoke_ends_what_the_member_opened_in_that_slice_only():
    conns = ct.parse_conntrack(DUMP)
    cut = ct.opened_by(conns, "10.250.0.1", 3)
    assert [(c.proto, c.dport) for c in cut] == [("icmp", None), ("udp", 5004), ("tcp", 443)]
    # not its connection in another slice (mark 4), not one it accepted as a provider (from .3)
    assert all(c.mark == 3 and c.src == "10.250.0.1" for c in cut)


def test_states_and_zones():
    assert ct.state("+trk+new-est-rel-inv") == [ct.TRK | ct.NEW, ct.TRK | ct.NEW | ct.EST | ct.REL | ct.INV]
    assert ct.state_text(*ct.state("+trk-inv")) == "-inv+trk"
    assert ct.ct_zone("3fa2") == 0x3FA2 and ct.ct_zone("ffff") == 0xFFFF
    assert 0 <= ct.ct_zone("not-hex") <= 0xFFFF
