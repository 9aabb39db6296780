"""traffic.tunroute: a UE's crafted frame becomes what its kernel would send through a session TUN."""
from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP

from traffic import packets as P
from traffic.tunroute import TunRoutes

NODE, MAC, SESSION, SERVER = "10.77.0.4", "02:00:00:00:00:04", "10.45.0.2", "10.77.0.1"
ROUTES = TunRoutes(NODE, {SERVER: ["uesimtun0", SESSION]}, MAC)


def test_a_routed_tcp_frame_leaves_the_tun_from_the_session_address_with_good_checksums():
    frame = P.tcp_frame(MAC, "02:00:00:00:00:01", NODE, SERVER, 40000, 443, P.token("0000002a"))
    tun, pkt = ROUTES.route(frame)
    assert tun == "uesimtun0"
    ip = IP(pkt)
    assert ip.src == SESSION and ip.dst == SERVER and bytes(ip[TCP].payload).startswith(P.token("0000002a"))
    ref = IP(bytes(ip))
    del ref.chksum, ref[TCP].chksum
    ref = IP(bytes(ref))  # scapy recomputes both
    assert (ip.chksum, ip[TCP].chksum) == (ref.chksum, ref[TCP].chksum)


def test_a_udp_datagram_keeps_a_correct_checksum():
    tun, pkt = ROUTES.route(P.udp_frame(MAC, "02:00:00:00:00:01", NODE, SERVER, 40000, 5004, b"x" * 33))
    ip = IP(pkt)
    ref = IP(bytes(ip))
    del ref[UDP].chksum
    assert ip[UDP].chksum == IP(bytes(ref))[UDP].chksum


def test_what_the_kernel_would_not_route_stays_on_the_node_link():
    other_src = P.tcp_frame(MAC, "02:00:00:00:00:01", "10.77.0.9", SERVER, 40000, 443)  # spoofed source
    other_mac = P.tcp_frame("02:00:00:00:00:09", "02:00:00:00:00:01", NODE, SERVER, 40000, 443)
    unrouted = P.tcp_frame(MAC, "02:00:00:00:00:02", NODE, "10.77.0.2", 40000, 104)
    tagged = P.tcp_frame(MAC, "02:00:00:00:00:01", NODE, SERVER, 40000, 443, vlans=(1, 2))
    for frame in (other_src, other_mac, unrouted, tagged):
        assert ROUTES.route(frame) == (None, frame)
