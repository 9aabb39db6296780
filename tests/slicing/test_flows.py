"""The slicing plan, checked by simulation: frames are pushed through each switch's tables
(table 0 admission, table 1 forwarding) and the Wiring's real links, so a leak, a black
hole, a missing reply path or a broadcast crossing slices shows up without building anything.
"""
from __future__ import annotations

import pytest

from testbed.openflow.layout import make_layout
from testbed.slicing.plan import controller_plan
from testbed.slicing.cookies import COOKIE_MAGIC, cookie, decode_cookie
from testbed.slicing.flows import (ETH_ARP, ETH_IP, FIVEQI_DSCP, fiveqi_dscp)
from testbed.slicing.inspect import label, parse_dump_flows
from testbed.slicing.policy import compile_policy

BROADCAST = "ff:ff:ff:ff:ff:ff"


class Net:
    """A plan plus the wiring, and a frame-level simulator of both."""

    def __init__(self, topo, extra=None, revoked=None):
        self.topo = topo
        self.lay = make_layout(topo, "0000")
        self.w = self.lay.wiring()
        self.plan = controller_plan(topo, self.lay, extra, revoked)
        self.by_dp = {dp: sw for sw, dp in self.w.dpids.items()}
        self.ip = {h: str(i.ip) for h, i in self.lay.ips.items()}
        self.mac = self.lay.macs

    def _lookup(self, sw: str, table: int, pkt: dict) -> dict | None:
        best = None
        for r in self.plan["switches"][self.w.dpids[sw]]:
            if r.get("table", 0) != table:
                continue
            if all(pkt.get(k) == v for k, v in r["match"].items()):
                if best is None or r["priority"] > best["priority"]:
                    best = r
        return best

    def send(self, host: str, **fields) -> list[tuple[str, dict]]:
        """Hosts that receive a frame `host` sends (with what it looks like there)."""
        sw, port, _ = self.w.hosts[host]
        pkt = {"vlan_vid": 0, **fields}
        received, todo, hops = [], [(sw, port, pkt)], 0
        while todo:
            hops += 1
            assert hops < 200, "forwarding loop"
            sw, in_port, pkt = todo.pop()
            pkt = {**pkt, "in_port": in_port}
            table = 0
            while True:
                r = self._lookup(sw, table, pkt)
                if r is None:
                    break  # no rule: OpenFlow 1.3 table miss is a drop
                outs = []
                for a in r["actions"]:
                    if "set_field" in a:
                        pkt = {**pkt, **a["set_field"]}
                    elif "output" in a:
                        outs.append(a["output"])
                for out in outs:
                    assert out != 0xFFFFFFFD, "rule sends to the controller"
                    peer = next((peer, pp) for p, peer, pp in self.w.ports[sw] if p == out)
                    if peer[0] in self.w.dpids:
                        todo.append((peer[0], peer[1], pkt))
                    else:
                        received.append((peer[0], pkt))
                if r.get("goto") is None:
                    break
                table = r["goto"]
        return received

    def ip_frame(self, src: str, dst: str, proto: str, **extra) -> dict:
        protos = {"icmp": 1, "tcp": 6, "udp": 17}
        return dict(eth_src=self.mac[src], eth_dst=self.mac[dst], eth_type=ETH_IP, ipv4_src=self.ip[src],
                    ipv4_dst=self.ip[dst], ip_proto=protos[proto], **extra)

    def tcp(self, src: str, dst: str, port: int, **kw) -> list[str]:
        return [h for h, _ in self.send(src, **{**self.ip_frame(src, dst, "tcp", tcp_dst=port, tcp_src=40000), **kw})]

    def ping(self, src: str, dst: str) -> list[str]:
        return [h for h, _ in self.send(src, **self.ip_frame(src, dst, "icmp", icmpv4_type=8))]

    def arp_request(self, src: str, target_ip: str, spa: str | None = None, sha: str | None = None) -> list[str]:
        return [h for h, _ in self.send(src, eth_src=self.mac[src], eth_dst=BROADCAST, eth_type=ETH_ARP, arp_op=1,
                                        arp_sha=sha or self.mac[src], arp_spa=spa or self.ip[src],
                                        arp_tpa=target_ip)]


@pytest.fixture(scope="module")
def net(minimal) -> Net:
    return Net(minimal)


def test_members_reach_their_services_and_replies_come_back(net):
    assert net.tcp("dr-tablet-01", "emr", 443) == ["emr"]
    assert net.tcp("dr-tablet-01", "pacs", 104) == ["pacs"]
    assert net.tcp("kiosk-01", "emr", 443) == ["emr"]
    reply = net.ip_frame("emr", "dr-tablet-01", "tcp", tcp_src=443, tcp_dst=40000)
    assert [h for h, _ in net.send("emr", **reply)] == ["dr-tablet-01"]
    assert net.ping("dr-tablet-01", "pacs") == ["pacs"]
    echo_reply = net.ip_frame("pacs", "dr-tablet-01", "icmp", icmpv4_type=0)
    assert [h for h, _ in net.send("pacs", **echo_reply)] == ["dr-tablet-01"]


def test_other_slice_forbidden_port_and_unsliced_hosts_are_dropped(net):
    assert net.tcp("kiosk-01", "pacs", 104) == []  # pacs is not in the kiosk slice
    assert net.ping("kiosk-01", "pacs") == []
    assert net.tcp("dr-tablet-01", "emr", 22) == []  # allowed server, forbidden port
    assert net.tcp("gnb-clinic", "emr", 443) == []  # in no slice
    assert net.tcp("kiosk-01", "dr-tablet-01", 443) == []  # member to member
    assert net.ping("emr", "dr-tablet-01") == []  # a server does not open flows to members
    # a server may only answer from the service port
    bad = net.ip_frame("emr", "dr-tablet-01", "tcp", tcp_src=22, tcp_dst=40000)
    assert net.send("emr", **bad) == []


def test_spoofing_is_dropped(net):
    # spoofed source IP: the kiosk pretends to be the doctor's tablet to reach PACS
    assert net.tcp("kiosk-01", "pacs", 104, ipv4_src=net.ip["dr-tablet-01"]) == []
    # spoofed source MAC
    assert net.tcp("kiosk-01", "pacs", 104, eth_src=net.mac["dr-tablet-01"], ipv4_src=net.ip["dr-tablet-01"]) == []
    # right IP header, wrong destination MAC: would deliver at L2 to another host
    assert net.tcp("kiosk-01", "emr", 443, eth_dst=net.mac["pacs"]) == []
    # VLAN-tagged (double tagging attack): no rule matches tagged frames
    assert net.tcp("dr-tablet-01", "emr", 443, vlan_vid=0x1000 | 10) == []


def test_arp_stays_within_the_slice_and_is_never_flooded(net):
    assert net.arp_request("dr-tablet-01", net.ip["pacs"]) == ["pacs"]
    assert net.arp_request("kiosk-01", net.ip["emr"]) == ["emr"]
    assert net.arp_request("kiosk-01", net.ip["pacs"]) == []  # not a peer
    assert net.arp_request("kiosk-01", net.ip["dr-tablet-01"]) == []
    # ARP spoofing: claiming another host's IP or MAC in the ARP payload
    assert net.arp_request("kiosk-01", net.ip["emr"], spa=net.ip["dr-tablet-01"]) == []
    assert net.arp_request("kiosk-01", net.ip["emr"], sha=net.mac["dr-tablet-01"]) == []
    # a server's ARP for a member (to answer it) works; the request arrives as unicast
    got = net.send("emr", eth_src=net.mac["emr"], eth_dst=BROADCAST, eth_type=ETH_ARP, arp_op=1,
                   arp_sha=net.mac["emr"], arp_spa=net.ip["emr"], arp_tpa=net.ip["kiosk-01"])
    assert [(h, p["eth_dst"]) for h, p in got] == [("kiosk-01", net.mac["kiosk-01"])]


def test_dscp_follows_the_slice_5qi(net):
    (_, pkt), = net.send("dr-tablet-01", **net.ip_frame("dr-tablet-01", "emr", "tcp", tcp_dst=443))
    assert pkt["ip_dscp"] == fiveqi_dscp(7) == 18
    (_, pkt), = net.send("kiosk-01", **net.ip_frame("kiosk-01", "emr", "tcp", tcp_dst=443))
    assert pkt["ip_dscp"] == 0
    assert FIVEQI_DSCP[1] == 46 and fiveqi_dscp(None) == 0 and fiveqi_dscp(12345) == 0


def test_cookies_name_the_slice_of_every_rule(net):
    names = {s["id"]: n for n, s in net.plan["slices"].items()}
    for rules in net.plan["switches"].values():
        for r in rules:
            dec = decode_cookie(r["cookie"])
            assert dec is not None and dec[0] in names
    assert decode_cookie(cookie(5, "arp", 7)) == (5, "arp")
    assert decode_cookie(0x1234) is None
    assert net.plan["drop_cookie"] >> 48 == COOKIE_MAGIC


def test_grant_and_revoke_change_the_rules(minimal):
    granted = Net(minimal, extra={"clinical": ["kiosk-01"]})
    assert granted.tcp("kiosk-01", "pacs", 104) == ["pacs"]
    revoked = Net(minimal, revoked={"clinical": ["dr-tablet-01"]})
    assert revoked.tcp("dr-tablet-01", "pacs", 104) == []
    assert revoked.tcp("kiosk-01", "emr", 443) == ["emr"]  # other slices untouched
    assert revoked.arp_request("dr-tablet-01", revoked.ip["pacs"]) == []


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


def test_reference_topology_intended_pairs_pass_and_other_slices_do_not(reference):
    net = Net(reference)
    pol = compile_policy(reference)
    for g in pol.grants:
        frame = net.ip_frame(g.src, g.dst, g.proto, **{f"{g.proto}_dst": g.port})
        assert [h for h, _ in net.send(g.src, **frame)] == [g.dst], g
        assert net.ping(g.src, g.dst) == [g.dst], g
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


def test_inspect_parses_and_names_an_ovs_dump(net):
    dp = net.w.dpids["clinic-sw"]
    mac, ip = net.mac["dr-tablet-01"], net.ip["dr-tablet-01"]
    c = cookie(net.plan["slices"]["clinical"]["id"], "service")
    text = (
        "OFPST_FLOW reply (OF1.3) (xid=0x2):\n"
        f" cookie={c:#x}, duration=5.097s, table=0, n_packets=3, n_bytes=222, priority=200,tcp,in_port=3,"
        f"vlan_tci=0x0000/0x1fff,dl_src={mac},nw_src={ip},tp_dst=443 actions=set_field:18->ip_dscp,goto_table:1\n"
        " cookie=0x0, duration=1s, table=1, n_packets=0, n_bytes=0, priority=0 actions=drop\n"
    )
    rows = label(parse_dump_flows(text), net.plan, dp)
    assert [(r.slice, r.kind, r.table, r.priority, r.packets) for r in rows] == [
        ("clinical", "service", 0, 200, 3), ("(foreign)", "?", 1, 0, 0)]
    assert rows[0].match == "tcp,in_port=3(dr-tablet-01),dl_src=dr-tablet-01,nw_src=dr-tablet-01,tp_dst=443"


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
