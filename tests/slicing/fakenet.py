"""The slicing plan on a fake network, as the slicing tests drive it: hosts send frames, see who gets them.

`Net` builds a topology's plan (stateful, or the stateless app's rules for the
same policy) and pushes frames through testbed.slicing.simulate's switches and
the wiring's real links; its helpers speak in handshakes, pings and ARP
requests so that each test reads as the traffic it checks. Shared by
test_flows.py (connections) and test_plan_rules.py (the rules themselves).
"""
from __future__ import annotations

from testbed.openflow.layout import make_layout
from testbed.slicing import conntrack as ct
from testbed.slicing.flows import ETH_ARP, ETH_IP, stateless_rules
from testbed.slicing.plan import controller_plan
from testbed.slicing.simulate import Conntrack, FakeNetwork

BROADCAST = "ff:ff:ff:ff:ff:ff"
SYN, ACK, FIN, RST, PSH, URG = ct.SYN, ct.ACK, ct.FIN, ct.RST, ct.PSH, ct.URG
RUN = "3fa2"
# hosts of topologies/minimal.yaml
DOC, KIOSK, EMR, PACS, GNB = "dr-tablet-01", "kiosk-01", "emr", "pacs", "gnb-clinic"


class Net:
    """A plan (stateful, or the stateless app's rules for the same policy) on a fake network."""

    def __init__(self, topo, extra=None, revoked=None, stateless=False, tracker: Conntrack | None = None,
                 policy=None):
        self.topo = topo
        self.lay = make_layout(topo, RUN)
        self.w = self.lay.wiring()
        self.plan = controller_plan(topo, self.lay, extra, revoked, policy=policy)
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
