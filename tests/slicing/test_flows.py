"""The slicing plan, checked by simulation: frames are pushed through each switch's tables and the
Wiring's real links by the fake network of testbed.slicing.simulate (connection tracker and
fragment reassembly included), so a leak, a black hole, a missing reply path, a connection
the wrong side may open, or a broadcast crossing slices shows up without building anything.
The rules themselves (cookies, meters, what OVS accepts) are checked in test_plan_rules.py.
"""
from __future__ import annotations

import pytest

from testbed.slicing import conntrack as ct
from testbed.slicing.flows import ETH_ARP, FIVEQI_DSCP, fiveqi_dscp
from testbed.slicing.policy import compile_policy
from testbed.slicing.simulate import Conntrack, fragments
from tests.slicing.fakenet import ACK, BROADCAST, DOC, EMR, FIN, GNB, KIOSK, PACS, PSH, RST, RUN, SYN, URG, Net


def test_members_open_their_services_and_the_connection_carries_both_ways(net):
    assert net.connect(DOC, EMR, 443) and net.connect(DOC, PACS, 104) and net.connect(KIOSK, EMR, 443)
    assert net.ping(DOC, PACS) == [PACS] and net.echo_reply(PACS, DOC) == [DOC]
    # the connection goes on, then closes normally
    assert net.to(DOC, net.seg(DOC, EMR, 40000, 443, FIN | ACK)) == [EMR]
    assert net.to(EMR, net.seg(EMR, DOC, 443, 40000, FIN | ACK)) == [DOC]
    assert net.sim.ct.entries(ct.ct_zone(RUN))  # tracked in the run's zone


def test_other_slice_forbidden_port_and_unsliced_hosts_are_dropped(net):
    assert net.tcp(KIOSK, PACS, 104) == []  # pacs is not in the kiosk slice
    assert net.ping(KIOSK, PACS) == []
    assert net.tcp(DOC, EMR, 22) == []  # allowed server, forbidden port
    assert net.tcp(GNB, EMR, 443) == []  # in no slice
    assert net.tcp(KIOSK, DOC, 443) == []  # member to member
    assert net.ping(EMR, DOC) == []  # a server does not open flows to members


def test_only_the_granted_side_opens_connections(net, stateless):
    for n in (net, stateless):
        assert n.connect(DOC, EMR, 443)
    # the provider opens a connection to the member: from the service port (nmap --source-port 443) too
    for sport, dport in ((443, 22), (443, 5900), (443, 40001), (50000, 22), (50000, 443)):
        assert net.tcp(EMR, DOC, dport, sport=sport) == [], (sport, dport)
    assert stateless.tcp(EMR, DOC, 22, sport=443) == [DOC]  # the stateless rules' hole
    assert stateless.tcp(EMR, DOC, 22, sport=50000) == []
    # a first UDP datagram from the provider, from a UDP service port number too
    assert net.to(EMR, net.udp(EMR, DOC, 443, 53)) == []
    assert net.ping(EMR, DOC) == [] and net.ping(PACS, DOC) == []


@pytest.mark.parametrize("flags", [ACK, FIN, FIN | PSH | URG, 0, RST, SYN | ACK, FIN | ACK, RST | ACK],
                         ids=["ACK", "FIN", "Xmas", "NULL", "RST", "SYN-ACK", "FIN-ACK", "RST-ACK"])
def test_stray_segments_and_replies_to_nothing_are_dropped(net, stateless, flags):
    assert net.connect(DOC, EMR, 443, sport=40000)  # a live connection on another port pair
    # from the provider's service port to a member port no connection uses
    assert net.to(EMR, net.seg(EMR, DOC, 443, 40001, flags)) == []
    # from the member to the granted port without a connection: only a SYN opens one
    assert net.to(DOC, net.seg(DOC, EMR, 40002, 443, flags)) == []
    # ... and a flag combination conntrack calls invalid is dropped inside a live connection too
    if flags in (FIN, FIN | PSH | URG, 0):
        assert net.to(EMR, net.seg(EMR, DOC, 443, 40000, flags)) == []
    # the negative control lets the provider's stray segments through
    assert stateless.to(EMR, stateless.seg(EMR, DOC, 443, 40001, flags)) == [DOC]


def test_replies_to_nothing_icmp_and_udp(net, stateless):
    assert net.echo_reply(EMR, DOC) == [] and stateless.echo_reply(EMR, DOC) == [DOC]
    assert net.ping(DOC, EMR, ident=9) == [EMR]
    assert net.echo_reply(EMR, DOC, ident=10) == []  # a reply to another request
    assert net.echo_reply(EMR, DOC, ident=9) == [DOC]


def test_udp_first_datagram_then_replies_only_on_that_flow(minimal):
    n = _with_udp_service(minimal)
    assert n.to(DOC, n.udp(DOC, EMR, 41000, 5004)) == [EMR]
    assert n.to(EMR, n.udp(EMR, DOC, 5004, 41000)) == [DOC]  # the reply
    assert n.to(EMR, n.udp(EMR, DOC, 5004, 41001)) == []  # the same source port, another member port
    assert n.to(EMR, n.udp(EMR, DOC, 5004, 53)) == []
    assert n.to(DOC, n.udp(DOC, EMR, 41000, 5005)) == []  # not a granted port


def test_icmp_errors_of_a_connection_pass_and_others_do_not(minimal):
    n = _with_udp_service(minimal)
    sent = n.udp(DOC, EMR, 41000, 5004)
    unreachable = n.ip_frame(EMR, DOC, "icmp", icmpv4_type=3, inner=sent)
    assert n.to(EMR, unreachable) == []  # no connection yet: an error about nothing
    assert n.to(DOC, sent) == [EMR]
    assert n.to(EMR, unreachable) == [DOC]  # +rel
    assert n.to(EMR, n.ip_frame(EMR, DOC, "icmp", icmpv4_type=3, inner=n.udp(DOC, EMR, 41099, 5004))) == []


def _with_udp_service(minimal) -> Net:
    from testbed.topology.model import Service

    topo = minimal.model_copy(deep=True)
    topo.node(EMR).services.append(Service(name="video", port=5004, proto="udp"))
    next(s for s in topo.slices if s.name == "clinical").services.append("video")
    return Net(topo)


def test_fragmented_first_datagram_passes_whole(minimal):
    n = _with_udp_service(minimal)
    first = n.udp(DOC, EMR, 41000, 5004)
    got = n.send(DOC, *fragments(first, [1480, 1480, 48], ident=1))
    assert [(h, p["frag"]["index"]) for h, p in got] == [(EMR, 0), (EMR, 1), (EMR, 2)]
    assert all(p.get("ip_dscp") == fiveqi_dscp(7) for _, p in got)
    reply = n.udp(EMR, DOC, 5004, 41000)
    assert len(n.send(EMR, *fragments(reply, [1480, 1480, 48], ident=2))) == 3
    # the fragment mode matters: with OpenFlow's "normal" mode no port is seen in a first fragment
    normal = Net(n.topo)
    normal.sim.frag_first_has_ports = False
    assert normal.send(DOC, *fragments(first, [1480, 1480, 48], ident=3)) == []


def test_fragment_tricks_do_not_pass(minimal):
    n = _with_udp_service(minimal)
    assert n.connect(DOC, EMR, 443)
    # member -> provider: a SYN to a forbidden port in fragments; its later fragments alone
    syn22 = n.seg(DOC, EMR, 40010, 22, SYN)
    assert n.send(DOC, *fragments(syn22, [1480, 1480], ident=10)) == []
    assert n.send(DOC, *fragments(syn22, [1480, 1480], ident=11)[1:]) == []
    # tiny fragments: the first holds only the ports, the flags come later
    assert n.send(DOC, *fragments(n.seg(DOC, EMR, 40011, 443, SYN), [8, 1480], ident=12)) == []
    # provider -> member: a new datagram in fragments, from the service port
    assert n.send(EMR, *fragments(n.udp(EMR, DOC, 5004, 53), [1480, 1480, 48], ident=13)) == []
    assert n.send(EMR, *fragments(n.seg(EMR, DOC, 443, 22, SYN), [1480, 1480], ident=14)) == []
    # overlapping fragments: a 'reply' ACK on the live connection, then a piece that rewrites it to a SYN
    ack = n.seg(EMR, DOC, 443, 40000, ACK)
    a, b = fragments(ack, [1480, 1480], ident=15)
    a2 = fragments(n.seg(EMR, DOC, 443, 40001, SYN), [1480, 1480], ident=15)[0]
    assert n.send(EMR, a, a2, b) == []
    assert len(n.send(EMR, *fragments(ack, [1480, 1480], ident=17))) == 2  # (the same ACK, not tampered with)
    # a lone non-first fragment, either way
    assert n.send(EMR, fragments(ack, [1480, 1480], ident=16)[1]) == []


def test_udp_granted_both_ways_goes_direct_and_nothing_wider(minimal):
    """GTP-U between a gNB and its UPF is granted both ways: whole datagrams skip the tracker (a one-way UDP
    flow never becomes established, so it would be committed again on every packet), fragments do not, and
    the direct rules let through nothing the grants do not."""
    from testbed.ran.network import prepare, run_policy
    from testbed.slicing.flows import symmetric

    topo, ran = prepare(minimal)
    policy = run_policy(topo, ran)
    upf = next(u.name for u in ran.upfs)
    n = Net(topo, policy=policy)
    direct = {g for g in symmetric(policy.grants)}
    assert {(g.src, g.dst, g.service) for g in direct} == {(GNB, upf, "gtpu"), (upf, GNB, "gtpu")}  # not RLS
    notes = [r["note"] for rs in n.plan["switches"].values() for r in rs if r["note"].endswith(": direct")]
    assert len(notes) == 2
    zone = ct.ct_zone(RUN)
    assert n.to(GNB, n.udp(GNB, upf, 2152, 2152)) == [upf]
    assert n.to(upf, n.udp(upf, GNB, 2152, 2152)) == [GNB]
    assert not n.sim.ct.entries(zone)  # the tracker never saw them
    # from another port: tracked (a new flow the grant allows), so its answer passes as a reply, and only it
    assert n.to(upf, n.udp(upf, GNB, 40000, 2152)) == [GNB] and n.sim.ct.entries(zone)
    assert n.to(GNB, n.udp(GNB, upf, 2152, 40000)) == [upf]  # the reply (a GTP-U echo response)
    assert n.to(GNB, n.udp(GNB, upf, 2152, 40001)) == []  # from the port to any other port: no
    got = n.send(GNB, *fragments(n.udp(GNB, upf, 2152, 2152), [1480, 48], ident=5))
    assert [h for h, _ in got] == [upf, upf]  # fragments: reassembled by the tracker, passed whole
    assert n.to(GNB, n.udp(GNB, upf, 2152, 2153)) == []  # another port
    assert n.to(DOC, n.udp(DOC, upf, 2152, 2152)) == []  # another sender
    assert n.to(DOC, n.udp(DOC, upf, 2152, 2152, ipv4_src=n.ip[GNB])) == []  # ... pretending to be the gNB
    assert n.to(DOC, n.udp(DOC, upf, 2152, 2152, ipv4_src=n.ip[GNB], eth_src=n.mac[GNB])) == []
    assert n.to(upf, n.udp(upf, DOC, 2152, 2152)) == []  # the UPF to a UE's own address


def test_a_media_port_both_ends_offer_still_answers_its_client(minimal):
    """Both ends offer udp/5004 and may open it (video both ways): a stream from an ephemeral port is tracked, so
    the receiver's answers to that port pass (the first direct rule, on the destination port alone, broke this:
    the request skipped the tracker and the answer met it as a new flow)."""
    from testbed.topology.model import Service

    topo = minimal.model_copy(deep=True)
    for node in (DOC, EMR):
        topo.node(node).services.append(Service(name="video", port=5004, proto="udp"))
    clinical = next(s for s in topo.slices if s.name == "clinical")
    clinical.services.append("video")
    clinical.members.append(EMR)
    n = Net(topo)
    assert n.to(DOC, n.udp(DOC, EMR, 41000, 5004)) == [EMR]
    assert n.to(EMR, n.udp(EMR, DOC, 5004, 41000)) == [DOC]  # HELLO_ACK
    assert n.to(EMR, n.udp(EMR, DOC, 5004, 41001)) == []
    assert n.to(DOC, n.udp(DOC, EMR, 5004, 5004)) == [EMR]  # port to port: direct, both ways
    assert n.to(EMR, n.udp(EMR, DOC, 5004, 5004)) == [DOC]


def test_spoofing_is_dropped(net):
    # spoofed source IP: the kiosk pretends to be the doctor's tablet to reach PACS
    assert net.tcp(KIOSK, PACS, 104, ipv4_src=net.ip[DOC]) == []
    # spoofed source MAC
    assert net.tcp(KIOSK, PACS, 104, eth_src=net.mac[DOC], ipv4_src=net.ip[DOC]) == []
    # right IP header, wrong destination MAC: would deliver at L2 to another host
    assert net.tcp(KIOSK, EMR, 443, eth_dst=net.mac[PACS]) == []
    # VLAN-tagged (double tagging attack): no rule matches tagged frames
    assert net.tcp(DOC, EMR, 443, vlan_vid=0x1000 | 10) == []
    # a provider's packet claiming to be part of the doctor's connection, sent by another host
    assert net.connect(DOC, EMR, 443)
    assert net.to(PACS, net.seg(EMR, DOC, 443, 40000, ACK, eth_src=net.mac[PACS])) == []


def test_arp_stays_within_the_slice_and_is_never_flooded(net):
    assert net.arp_request(DOC, net.ip[PACS]) == [PACS]
    assert net.arp_request(KIOSK, net.ip[EMR]) == [EMR]
    assert net.arp_request(KIOSK, net.ip[PACS]) == []  # not a peer
    assert net.arp_request(KIOSK, net.ip[DOC]) == []
    # ARP spoofing: claiming another host's IP or MAC in the ARP payload
    assert net.arp_request(KIOSK, net.ip[EMR], spa=net.ip[DOC]) == []
    assert net.arp_request(KIOSK, net.ip[EMR], sha=net.mac[DOC]) == []
    # a server's ARP for a member (to answer it) works; the request arrives as unicast
    got = net.send(EMR, dict(eth_src=net.mac[EMR], eth_dst=BROADCAST, eth_type=ETH_ARP, arp_op=1,
                             arp_sha=net.mac[EMR], arp_spa=net.ip[EMR], arp_tpa=net.ip[KIOSK]))
    assert [(h, p["eth_dst"]) for h, p in got] == [(KIOSK, net.mac[KIOSK])]


def test_dscp_follows_the_slice_5qi_both_ways(net):
    (_, pkt), = net.send(DOC, net.seg(DOC, EMR, 40000, 443, SYN))
    assert pkt["ip_dscp"] == fiveqi_dscp(7) == 18
    (_, pkt), = net.send(EMR, net.seg(EMR, DOC, 443, 40000, SYN | ACK))
    assert pkt["ip_dscp"] == 18  # the reply carries the slice that admitted the connection
    (_, pkt), = net.send(KIOSK, net.seg(KIOSK, EMR, 40000, 443, SYN))
    assert pkt["ip_dscp"] == 0
    assert FIVEQI_DSCP[1] == 46 and fiveqi_dscp(None) == 0 and fiveqi_dscp(12345) == 0


def test_each_packet_meets_its_slice_meter_once(reference):
    n = Net(reference)
    g = next(g for g in compile_policy(reference).grants if g.proto == "tcp" and n.plan["slices"][g.slice]["meter_id"])
    mid = n.plan["slices"][g.slice]["meter_id"]
    n.sim.meters.clear()
    assert n.connect(g.src, g.dst, g.port)
    assert n.sim.meters == [mid] * 4  # SYN, SYN-ACK, and one data segment each way


def test_revoke_ends_live_sessions_only_with_the_flush(minimal):
    """A connection open across revoke and grant again: the new rules alone stop it while the pair is
    unadmitted, but the tracker still knows it, so the grant would revive it; the flush
    (conntrack.opened_by, what `testbed slice revoke` deletes) ends it for good."""
    zone = ct.ct_zone(RUN)
    for flush in (False, True):
        tracker = Conntrack()
        before = Net(minimal, tracker=tracker)
        assert before.connect(DOC, PACS, 104) and before.connect(KIOSK, EMR, 443, sport=41000)
        after = Net(minimal, revoked={"clinical": [DOC]}, tracker=tracker)
        data = after.seg(DOC, PACS, 40000, 104, ACK | PSH)
        assert after.to(DOC, data) == []
        if flush:
            cut = ct.opened_by(tracker.entries(zone), after.ip[DOC], after.plan["slices"]["clinical"]["id"])
            assert [(c.dst, c.dport) for c in cut] == [(after.ip[PACS], 104)]
            tracker.flush(zone, cut)
        again = Net(minimal, tracker=tracker)  # granted again
        assert again.to(DOC, data) == ([] if flush else [PACS])
        assert again.to(PACS, again.seg(PACS, DOC, 104, 40000, ACK | PSH)) == ([] if flush else [DOC])
        assert again.to(KIOSK, again.seg(KIOSK, EMR, 41000, 443, ACK | PSH)) == [EMR]  # another member's session
        assert again.connect(DOC, PACS, 104, sport=40100)  # a new connection is fine
