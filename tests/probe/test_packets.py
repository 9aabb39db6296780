"""traffic.packets builds frames Scapy agrees with, and parses what it builds."""
from __future__ import annotations

import subprocess
import sys

import pytest

from traffic import packets as P

A_MAC, B_MAC, A_IP, B_IP = "02:7b:00:00:00:01", "02:7b:00:00:00:02", "10.77.0.1", "10.77.0.2"


def test_parse_tcp_frame_with_token():
    f = P.tcp_frame(A_MAC, B_MAC, A_IP, B_IP, 30000, 104, P.token("0000002a"))
    s = P.parse(f)
    assert s["eth_src"] == A_MAC and s["eth_dst"] == B_MAC and s["vlans"] == []
    assert (s["ip_src"], s["ip_dst"], s["proto"], s["sport"], s["dport"], s["flags"]) == (A_IP, B_IP, 6, 30000, 104, "S")
    assert s["token"] == "0000002a"


def test_parse_double_tag_arp_icmp_udp():
    s = P.parse(P.tcp_frame(A_MAC, P.BROADCAST, A_IP, B_IP, 1, 2, P.token("x0000001"), vlans=(1, 3)))
    assert s["vlans"] == [1, 3] and s["type"] == P.ETH_P_IP and s["token"] == "x0000001"
    s = P.parse(P.arp_frame(A_MAC, B_MAC, 2, A_MAC, "10.77.0.9", B_MAC, B_IP, P.token("x0000002")))
    assert (s["arp_op"], s["arp_sha"], s["arp_spa"], s["arp_tpa"], s["token"]) == (2, A_MAC, "10.77.0.9", B_IP, "x0000002")
    s = P.parse(P.icmp_frame(A_MAC, B_MAC, A_IP, B_IP, 7, P.token("00000003")))
    assert (s["proto"], s["icmp_type"], s["icmp_id"]) == (1, 8, 7)
    s = P.parse(P.udp_frame(A_MAC, B_MAC, A_IP, B_IP, 5, 2152, P.token("00000004")))
    assert (s["proto"], s["dport"], s["token"]) == (17, 2152, "00000004")


def test_token_format_is_checked():
    with pytest.raises(ValueError):
        P.token("short")


_SCAPY_CHECK = r"""
import sys
from scapy.layers.l2 import Ether, ARP, Dot1Q
from scapy.layers.inet import IP, TCP, UDP, ICMP
from traffic import packets as P
a, b = "02:7b:00:00:00:01", "02:7b:00:00:00:02"
def same_checksums(pkt, *layers):
    for L in layers:
        got = pkt[L].chksum
        del pkt[L].chksum
        want = Ether(bytes(pkt))[L].chksum
        assert got == want, (L.__name__, hex(got), hex(want))
f = Ether(P.tcp_frame(a, b, "10.77.0.1", "10.77.0.2", 30000, 104, P.token("0000002a")))
assert f[TCP].dport == 104 and f[TCP].flags == "S" and bytes(f[TCP].payload).startswith(b"TBP-0000002a")
same_checksums(f, IP, TCP)
f = Ether(P.udp_frame(a, b, "10.77.0.1", "10.77.0.2", 5, 2152, P.token("00000004")))
same_checksums(f, IP, UDP)
f = Ether(P.icmp_frame(a, b, "10.77.0.1", "10.77.0.2", 7, P.token("00000003")))
assert f[ICMP].type == 8 and f[ICMP].id == 7
same_checksums(f, IP, ICMP)
f = Ether(P.tcp_frame(a, b, "10.77.0.1", "10.77.0.2", 1, 2, vlans=(1, 3)))
assert f[Dot1Q].vlan == 1 and f[Dot1Q].payload.vlan == 3 and f[IP].dst == "10.77.0.2"
f = Ether(P.arp_frame(a, P.BROADCAST, 1, a, "10.77.0.9", "00:00:00:00:00:00", "10.77.0.9"))
assert f[ARP].op == 1 and f[ARP].psrc == "10.77.0.9" and f[ARP].hwsrc == a
print("ok")
"""


def test_frames_agree_with_scapy():
    """Scapy dissects our frames and recomputes the same checksums.

    Run in a fresh network namespace when we can (Scapy reads every route and
    interface at import: seconds in a root namespace with hundreds of veths).
    """
    pytest.importorskip("scapy")
    cmd = [sys.executable, "-c", _SCAPY_CHECK]
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
