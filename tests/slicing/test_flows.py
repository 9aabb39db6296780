"""The slicing plan, checked by simulation: frames are pushed through each switch's tables and the
Wiring's real links by the fake network of testbed.slicing.simulate (connection tracker and
fragment reassembly included), so a leak, a black hole, a missing reply path, a connection
the wrong side may open, or a broadcast crossing slices shows up without building anything.
"""
from __future__ import annotations

import pytest

from testbed.openflow.layout import make_layout
from testbed.slicing import conntrack as ct
from testbed.slicing.cookies import COOKIE_MAGIC, cookie, decode_cookie
from testbed.slicing.flows import ETH_ARP, ETH_IP, FIVEQI_DSCP, fiveqi_dscp, stateless_rules
from testbed.slicing.inspect import label, parse_dump_flows
from testbed.slicing.plan import controller_plan
from testbed.slicing.policy import compile_policy
from testbed.slicing.simulate import Conntrack, FakeNetwork, fragments, verify_plan, verify_rule

BROADCAST = "ff:ff:ff:ff:ff:ff"
SYN, ACK, FIN, RST, PSH, URG = ct.SYN, ct.ACK, ct.FIN, ct.RST, ct.PSH, ct.URG
RUN = "3fa2"


class Net:
    """A plan (stateful, or the stateless app's rules for the same policy) on a fake network."""

    def __init__(self, topo, extra=None, revoked=None, stateless=False, tracker: Conntrack | None = None):
        self.topo = topo
        self.lay = make_layout(topo, RUN)
        self.w = self.lay.wiring()
        self.plan = controller_plan(topo, self.lay, extra, revoked)
        if stateless:
            self.plan = {**self.plan, **stateless_rules(self.plan)}
        self.sim = FakeNetwork(self.plan, self.w, tracker)
        self.ip = {h: str(i.ip) for h, i in self.lay.ips.items()}
        self.mac = self.lay.macs

    def send(self, host: str, *frames: dict) -> list[tuple[str, dict]]:
        return self.sim.send(host, *frames)

    def to(self, host: str, *frames: dict) -> list[str]:
        """Hosts that receive what `host` sends."""
        return [h for h, _ in self.send(host, *frames)]

    def ip_frame(self, src: str, dst: str, proto: str, **extra) -> dict:
        protos = {"icmp": 1, "tcp": 6, "udp": 17}
        return dict(eth_src=self.mac[src], eth_dst=self.mac[dst], eth_type=ETH_IP, ipv4_src=self.ip[src],
                    ipv4_dst=self.ip[dst], ip_proto=protos[proto], ip_frag=0, **extra)

    def seg(self, src: str, dst: str, sport: int, dport: int, flags: int, **kw) -> dict:
        return {**self.ip_frame(src, dst, "tcp", tcp_src=sport, tcp_dst=dport, tcp_flags=flags), **kw}

    def udp(self, src: str, dst: str, sport: int, dport: int, **kw) -> dict:
        return {**self.ip_frame(src, dst, "udp", udp_src=sport, udp_dst=dport), **kw}

    def tcp(self, src: str, dst: str, port: int, sport: int = 40000, **kw) -> list[str]:
        """Who receives a SYN from src:sport to dst:port."""
        return self.to(src, self.seg(src, dst, sport, port, SYN, **kw))

    def connect(self, src: str, dst: str, port: int, sport: int = 40000) -> bool:
        """A whole handshake and one data segment each way."""
        return (self.tcp(src, dst, port, sport) == [dst]
                and self.to(dst, self.seg(dst, src, port, sport, SYN | ACK)) == [src]
                and self.to(src, self.seg(src, dst, sport, port, ACK | PSH)) == [dst]
                and self.to(dst, self.seg(dst, src, port, sport, ACK | PSH)) == [src])

    def ping(self, src: str, dst: str, ident: int = 7) -> list[str]:
        return self.to(src, self.ip_frame(src, dst, "icmp", icmpv4_type=8, icmp_id=ident))

    def echo_reply(self, src: str, dst: str, ident: int = 7) -> list[str]:
        return self.to(src, self.ip_frame(src, dst, "icmp", icmpv4_type=0, icmp_id=ident))

    def arp_request(self, src: str, target_ip: str, spa: str | None = None, sha: str | None = None) -> list[str]:
        return self.to(src, dict(eth_src=self.mac[src], eth_dst=BROADCAST, eth_type=ETH_ARP, arp_op=1,
                                 arp_sha=sha or self.mac[src], arp_spa=spa or self.ip[src], arp_tpa=target_ip))


@pytest.fixture
def net(minimal) -> Net:
    return Net(minimal)


@pytest.fixture
def stateless(minimal) -> Net:
    return Net(minimal, stateless=True)


DOC, KIOSK, EMR, PACS, GNB = "dr-tablet-01", "kiosk-01", "emr", "pacs", "gnb-clinic"


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
