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


def test_parse_fragments_and_trailer_token():
    seg = P.tcp(A_IP, B_IP, 443, 61000, "S", P.token("v0000001"))
    first, second = P.fragments(A_MAC, B_MAC, A_IP, B_IP, 6, 77, seg, (8,))
    s = P.parse(first)
    assert (s["frag"], s["mf"], s["ip_id"], s["sport"], s["dport"]) == (0, True, 77, 443, 61000)
    assert "flags" not in s  # 8 bytes of TCP: no flags (the Ethernet padding is not read as TCP)
    assert "token" not in s
    s = P.parse(second)
    assert (s["frag"], s["mf"], s["token"]) == (8, False, "v0000001") and "dport" not in s
    tiny = P.fragment_frame(A_MAC, B_MAC, A_IP, B_IP, 6, 78, 0, True, seg[:8], trailer=P.token("v0000002"))
    assert P.parse(tiny)["token"] == "v0000002"
    with pytest.raises(ValueError):
        P.fragment_frame(A_MAC, B_MAC, A_IP, B_IP, 6, 1, 4, False, b"x")
    s = P.parse(P.icmp_reply_frame(A_MAC, B_MAC, A_IP, B_IP, 0xFFFF, P.token("v0000003")))
    assert (s["icmp_type"], s["icmp_id"], s["token"]) == (0, 0xFFFF, "v0000003")
    assert "frag" not in P.parse(P.tcp_frame(A_MAC, B_MAC, A_IP, B_IP, 1, 2))  # DF, offset 0: not a fragment


# Scapy dissects every evasion frame (and reassembles fragmented ones); the test judges what it saw.
_SCAPY_EVASIONS = r"""
import json, sys
from scapy.layers.l2 import Ether
from scapy.layers.inet import IP, TCP, UDP, ICMP, defragment
from scapy.packet import Raw

def l4(ip):
    out = {}
    for L, name in ((TCP, "tcp"), (UDP, "udp"), (ICMP, "icmp")):
        if L in ip and not ip.frag:
            got = ip[L].chksum
            p = ip.copy()
            del p[L].chksum
            out = {"l4": name, "chksum_ok": IP(bytes(p))[L].chksum == got}
            if name == "icmp":
                out.update(type=ip[ICMP].type, id=ip[ICMP].id)
            else:
                out.update(sport=ip[L].sport, dport=ip[L].dport)
            if name == "tcp":
                out["flags"] = str(ip[TCP].flags)
    return out

def dissect(raw):
    e = Ether(raw)
    ip = e[IP]
    p = ip.copy()
    del p.chksum
    d = {"src": e.src, "dst": e.dst, "ip_src": ip.src, "ip_dst": ip.dst, "proto": ip.proto, "id": ip.id,
         "frag": ip.frag * 8, "mf": bool(ip.flags.MF), "df": bool(ip.flags.DF),
         "ip_chksum_ok": IP(bytes(p)).chksum == ip.chksum, "payload_len": ip.len - ip.ihl * 4}
    if not (ip.flags.MF or ip.frag):
        d.update(l4(ip))
    elif ip.frag == 0 and d["payload_len"] >= 20:  # a first fragment: its checksum covers the whole datagram
        d.update({k: v for k, v in l4(ip).items() if k != "chksum_ok"})
    return d

def overwrite(raws):
    # later fragments overwrite earlier bytes (the reassembly a filter must not be fooled by)
    buf, ip0 = bytearray(), None
    for raw in raws:
        ip = Ether(raw)[IP]
        ip0 = ip0 or ip
        data = raw[14 + ip.ihl * 4: 14 + ip.len]
        off = ip.frag * 8
        buf[len(buf):] = bytes(max(0, off + len(data) - len(buf)))
        buf[off:off + len(data)] = data
    whole = IP(src=ip0.src, dst=ip0.dst, proto=ip0.proto, id=ip0.id) / Raw(bytes(buf))
    return l4(IP(bytes(whole)))

out = []
for row in json.load(sys.stdin):
    raws = [bytes.fromhex(f) for f in row["frames"]]
    r = {"id": row["id"], "frames": [dissect(x) for x in raws]}
    if any(d["mf"] or d["frag"] for d in r["frames"]) and len(raws) > 1:
        r["overwrite"] = overwrite(raws)
        ips = [Ether(x)[IP] for x in raws]
        whole = [p for p in defragment([IP(bytes(ip)[:ip.len]) for ip in ips])  # Ethernet padding cut off
                 if isinstance(p, IP) and not p.flags.MF and not p.frag]
        if whole:  # its header still has the first fragment's length: let Scapy recompute it
            del whole[0].len, whole[0].chksum
        r["scapy_defragment"] = l4(IP(bytes(whole[0]))) if whole else None
    out.append(r)
print(json.dumps(out))
"""


def test_evasion_frames_agree_with_scapy(minimal):
    """Every frame the evasion rows send, dissected by Scapy: addresses, checksums, flags,
    fragment fields; fragmented datagrams reassembled into the segment the row names."""
    pytest.importorskip("scapy")
    import json

    from testbed.openflow.layout import make_layout
    from testbed.probe.attacks import Hosts
    from testbed.probe.evasions import plan_evasions
    from testbed.slicing.policy import compile_policy

    lay = make_layout(minimal, "0000")
    h = Hosts({n: str(i.ip) for n, i in lay.ips.items()}, dict(lay.macs))
    plan = plan_evasions(compile_policy(minimal), h)
    cmd = [sys.executable, "-c", _SCAPY_EVASIONS]
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n", *cmd]
    r = subprocess.run(cmd, input=json.dumps([{"id": a.id, "frames": [f.hex() for f in a.frames]} for a in plan]),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    seen = {x["id"]: x for x in json.loads(r.stdout)}
    flags = {"ACK": "A", "FIN": "F", "Xmas": "FPU", "NULL": "", "RST": "R", "SYN-ACK": "SA"}
    for a in plan:
        got, dst = seen[a.id], a.forbidden_at[0]
        for d in got["frames"]:
            assert (d["src"], d["dst"], d["ip_src"], d["ip_dst"]) == (h.mac[a.src], h.mac[dst], h.ip[a.src], h.ip[dst])
            assert d["ip_chksum_ok"], a.name
            if "chksum_ok" in d:
                assert d["chksum_ok"], a.name
        first = got["frames"][0]
        if a.kind == "tcp-flags":
            want = next(v for k, v in flags.items() if f"TCP {k}" in a.name)
            assert (first["l4"], first["flags"]) == ("tcp", want), a.name
        elif a.kind == "unsolicited-reply":
            if "SYN-ACK" in a.name:
                assert first["flags"] == "SA"
            elif "ICMP" in a.name:
                assert (first["l4"], first["type"]) == ("icmp", 0)
            else:
                assert first["l4"] == "udp"
        elif a.kind in ("reverse-syn", "source-port"):
            assert all(not d["mf"] and not d["frag"] and d["df"] for d in got["frames"])
            assert all(d.get("flags", "S") == "S" for d in got["frames"])
        elif "first fragment has the port" in a.name:  # in order, no overlap: Scapy's reassembly agrees
            assert got["overwrite"] == got["scapy_defragment"]
            assert (got["overwrite"]["flags"], got["overwrite"]["dport"]) == ("S", 22) and got["overwrite"]["chksum_ok"]
            assert first["dport"] == 22 and first["mf"]
        elif "overlapping" in a.name:
            assert first["flags"] == "A" and first["mf"]  # what a filter sees first: an ACK, a 'reply'
            assert got["frames"][1]["frag"] == 8  # overlaps bytes 8-31 of the first
            assert got["overwrite"]["flags"] == "S" and got["overwrite"]["chksum_ok"]  # what it becomes
        elif "tiny" in a.name:
            assert first["payload_len"] == 8 and "l4" not in first  # ports only; no flags to filter on
            assert got["overwrite"] == got["scapy_defragment"]
            assert got["overwrite"]["flags"] == "S" and got["overwrite"]["chksum_ok"]
        elif "alone" in a.name:
            assert len(got["frames"]) == 1 and got["frames"][0]["frag"] == 16
