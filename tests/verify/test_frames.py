"""A counterexample header becomes the very frame a dissector reads back (Scapy), token included."""
from __future__ import annotations

from scapy.all import ARP, IP, TCP, UDP, Dot1Q, Ether

from testbed.verify.frames import frame
from testbed.verify.headers import to_int

TOK = b"TBP-abcdefgh"
BASE = {"eth_src": to_int("eth_src", "02:7b:00:00:00:01"), "eth_dst": to_int("eth_dst", "02:7b:00:00:00:08"),
        "vlan_vid": 0, "eth_type": 0x800, "ipv4_src": to_int("ipv4_src", "10.77.0.1"),
        "ipv4_dst": to_int("ipv4_dst", "10.77.0.8"), "ip_proto": 6, "ip_frag": 0, "tp_src": 80, "tp_dst": 1,
        "tcp_flags": 0x12, "ip_dscp": 18, "icmpv4_type": 0, "icmpv4_code": 0}


def test_tcp_header_fields_and_token():
    f = Ether(frame(BASE, TOK))
    assert f[IP].src == "10.77.0.1" and f[IP].dst == "10.77.0.8" and f[IP].tos == 18 << 2
    assert (f[TCP].sport, f[TCP].dport, str(f[TCP].flags)) == (80, 1, "SA")
    assert TOK in bytes(f)


def test_later_fragment_vlan_udp_and_arp():
    later = Ether(frame({**BASE, "ip_frag": 3, "ip_proto": 17, "vlan_vid": 0x1000 | 7}, TOK))
    assert later[Dot1Q].vlan == 7 and later[IP].frag > 0 and later[IP].proto == 17 and TOK in bytes(later)
    udp = Ether(frame({**BASE, "ip_proto": 17}, TOK))
    assert udp[UDP].dport == 1 and udp[IP].flags == "DF"
    arp = Ether(frame({**BASE, "eth_type": 0x806, "arp_op": 1, "arp_sha": BASE["eth_src"],
                       "arp_spa": BASE["ipv4_src"], "arp_tpa": BASE["ipv4_dst"], "arp_tha": 0}, TOK))
    assert arp[ARP].op == 1 and arp[ARP].pdst == "10.77.0.8" and TOK in bytes(arp)
