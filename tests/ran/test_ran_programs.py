"""The built-in 5G programs on a real network: namespaces, TUNs, GTP-U on the wire (tests/tools/ranlab.py).

One lab for the module: UE (two subscribed slices and one it is not subscribed
to), a rogue UE with an unknown SUPI, gNB, core, UPF and a server, all on one
bridge inside the lab's own namespaces. Everything is checked from outside the
programs too: interfaces with `ip`, packets with tcpdump + tshark and Scapy.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from testbed.ran import n2
from tests.tools.ranlab import DIRECT_HOST, RanLab

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the 5G lab needs root (network namespaces, TUN)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is missing")
    lab = RanLab.create(tmp_path_factory.mktemp("ranlab"))
    try:
        lab.start_all()
        lab.wait_status("ue", lambda s: sum(x["state"] in ("active", "rejected") for x in s["sessions"]) == 3)
        lab.wait_status("rogue", lambda s: s["state"] == "rejected")
        yield lab
    finally:
        lab.destroy()


def _sessions(lab: RanLab):
    return lab.plan.subscriber("tablet").sessions


def test_registration_and_two_sessions_become_uesimtun_interfaces(lab: RanLab, record_property):
    st = lab.status("ue")
    assert st["registered"] and st["link"] == "up"
    active = {s["psi"]: s for s in st["sessions"] if s["state"] == "active"}
    for planned in _sessions(lab):
        got = active[planned.psi]
        assert (got["tun"], got["address"]) == (planned.tun, str(planned.address))
        assert planned.address in planned.pool
    addrs = json.loads(lab.exec("ue", "ip", "-j", "addr", "show").stdout)
    seen = {i["ifname"]: [a["local"] for a in i["addr_info"]] for i in addrs}
    assert seen["uesimtun0"] == [str(_sessions(lab)[0].address)]
    assert seen["uesimtun1"] == [str(_sessions(lab)[1].address)]
    assert "uesimtun2" not in seen  # the unsubscribed slice's session never came up
    routes = lab.exec("ue", "ip", "route").stdout
    assert f"{lab.roles['server']} dev uesimtun0" in routes
    record_property("registration_ms", st["registration_ms"])
    record_property("session_setup_ms", [s["setup_ms"] for s in active.values()])
    print(f"\nregistration {st['registration_ms']} ms, sessions {[s['setup_ms'] for s in active.values()]} ms")


def test_n2_transport_is_sctp_where_the_kernel_has_it(lab: RanLab):
    expected = n2.SCTP if n2.sctp_available() else n2.TCP
    assert lab.status("gnb")["n2"]["transport"] == expected
    core = lab.status("core")
    assert expected in core["n2"]["transports"] and core["gnbs"][0]["transport"] == expected
    assert f"n2={expected}/38412" in lab.log_text("gnb")


def test_ping_and_tcp_through_each_session(lab: RanLab):
    routes = {e["psi"]: e["routes"] for e in lab.configs["ue"]["sessions"]}
    targets = {s.psi: routes[s.psi][0].split("/")[0] for s in _sessions(lab)}
    for psi, dest in targets.items():
        r = lab.exec("ue", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", dest)
        assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
    # TCP through session 1 (the server's iperf service is granted to the clinical slice)
    result = lab.iperf(targets[1], seconds=1)
    assert result["bps"] > 1e6
    upf = lab.wait_status("upf", lambda s: all(x["ul_packets"] > 0 and x["dl_packets"] > 0 for x in s["sessions"]))
    by_teid = {x["ul_teid"]: x for x in upf["sessions"]}
    for s in _sessions(lab):
        assert by_teid[s.ul_teid]["address"] == str(s.address) and by_teid[s.ul_teid]["dl_teid"] == s.dl_teid
    ue = lab.status("ue")
    assert all(x["ul_packets"] > 0 and x["dl_packets"] > 0 for x in ue["sessions"] if x["state"] == "active")


def _capture(lab: RanLab, path: Path, action) -> None:
    cap = subprocess.Popen(["ip", "netns", "exec", lab.ns("upf"), "tcpdump", "-i", "eth0", "-n", "-U", "-w",
                            str(path), "udp", "port", "2152"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):  # tcpdump says "listening on" once the capture runs
            time.sleep(0.05)
            if path.exists():
                break
        time.sleep(0.3)
        action()
        time.sleep(0.5)
    finally:
        cap.send_signal(signal.SIGINT)
        try:
            cap.wait(10)
        except subprocess.TimeoutExpired:
            cap.kill()
            cap.wait()


@pytest.fixture(scope="module")
def n3_capture(lab: RanLab, tmp_path_factory) -> Path:
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is missing")
    path = tmp_path_factory.mktemp("n3") / "n3.pcap"
    routes = {e["psi"]: e["routes"][0].split("/")[0] for e in lab.configs["ue"]["sessions"] if e["routes"]}

    def pings() -> None:
        for dest in routes.values():
            lab.exec("ue", "ping", "-n", "-c", "3", "-i", "0.1", "-W", "1", dest)

    _capture(lab, path, pings)
    assert path.stat().st_size > 24
    return path


def _expected(lab: RanLab) -> dict[int, tuple[str, int, int]]:
    """TEID -> (direction, QFI, DSCP) of every tunnel of the tablet's sessions."""
    out = {}
    for s in _sessions(lab):
        out[s.ul_teid] = ("ul", s.qfi, s.dscp)
        out[s.dl_teid] = ("dl", s.qfi, s.dscp)
    return out


def test_n3_capture_decodes_as_gtpu_in_tshark(lab: RanLab, n3_capture: Path):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is missing (scripts/setup.sh installs it)")
    r = subprocess.run(["tshark", "-r", str(n3_capture), "-d", "udp.port==2152,gtp", "-T", "fields", "-E",
                        "occurrence=f", "-e", "ip.dst", "-e", "gtp.teid", "-e", "gtp.ext_hdr.pdu_ses_con.qos_flow_id",
                        "-e", "ip.dsfield.dscp", "-e", "gtp.ext_hdr.pdu_ses_con.pdu_type"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines() if line.strip()]
    seen: dict[int, tuple[str, int, int]] = {}
    for dst, teid, qfi, dscp, pdu_type in rows:
        direction = "ul" if dst == lab.roles["upf"] else "dl"
        assert pdu_type == ("1" if direction == "ul" else "0")
        seen[int(teid, 0)] = (direction, int(qfi), int(dscp))
    assert seen == _expected(lab)
    assert len(seen) == 4  # one TEID per session and direction, all different


def test_n3_capture_decodes_as_gtpu_in_scapy(lab: RanLab, n3_capture: Path):
    from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    seen: dict[int, tuple[str, int, int]] = {}
    inner_sources = set()
    for pkt in rdpcap(str(n3_capture)):
        if GTP_U_Header not in pkt:
            continue
        outer = pkt[IP]
        direction = "ul" if outer.dst == lab.roles["upf"] else "dl"
        seen[pkt[GTP_U_Header].teid] = (direction, pkt[GTPPDUSessionContainer].QFI, outer.tos >> 2)
        inner = pkt[GTP_U_Header][IP]
        if direction == "ul":
            inner_sources.add(inner.src)
    assert seen == _expected(lab)
    assert inner_sources == {str(s.address) for s in _sessions(lab)}


def test_unknown_supi_and_unsubscribed_slice_are_rejected_with_their_causes(lab: RanLab):
    rogue = lab.status("rogue")
    assert rogue["state"] == "rejected" and rogue["reject"]["cause"] == 7
    assert rogue["reject"]["cause_name"] == "services-not-allowed"
    ue = lab.status("ue")
    kiosk = next(s for s in ue["sessions"] if s["psi"] == 3)
    assert (kiosk["state"], kiosk["cause"], kiosk["cause_name"]) == ("rejected", 33, "service-option-not-subscribed")
    core = lab.status("core")
    rejects = {(r["kind"], r["cause"], r["supi"]) for r in core["rejects"]}
    assert ("registration", 7, "imsi-460009999999999") in rejects
    assert ("session", 33, lab.plan.subscriber("tablet").supi) in rejects
    assert "reject kind=registration" in lab.log_text("core") and "cause=33" in lab.log_text("ue")


def _icmp_packet(src: str, dst: str) -> str:
    """Python source building an IPv4 ICMP echo request from src to dst (checksums included)."""
    return f"""
import socket, struct
def csum(b):
    b += b"\\0" * (len(b) % 2); s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
icmp = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"spoof" * 8
icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, socket.inet_aton("{src}"),
                  socket.inet_aton("{dst}"))
pkt = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + icmp
"""


def _send_gtpu(lab: RanLab, role: str, teid: int, inner_src: str, count: int = 5, inner_dst: str | None = None) -> None:
    lab.python(role, _icmp_packet(inner_src, inner_dst or lab.roles["server"]) + f"""
from testbed.ran import gtpu
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("{lab.roles[role]}", 0))
for _ in range({count}):
    s.sendto(gtpu.encapsulate({teid}, 1, pkt, uplink=True), ("{lab.roles['upf']}", 2152))
""")


def _drops(lab: RanLab, reason: str) -> int:
    return lab.status("upf").get("drops", {}).get(reason, 0)


def test_upf_drops_a_forged_teid(lab: RanLab):
    before = _drops(lab, "unknown-teid")
    _send_gtpu(lab, "gnb", 0x0BADF00D, str(_sessions(lab)[0].address))
    st = lab.wait_status("upf", lambda s: s["drops"].get("unknown-teid", 0) >= before + 5)
    assert any(d["reason"] == "unknown-teid" and d["teid"] == 0x0BADF00D for d in st["recent_drops"])
    assert "drop reason=unknown-teid" in lab.log_text("upf")


def test_upf_drops_gtpu_from_a_node_that_is_not_a_gnb(lab: RanLab):
    before = _drops(lab, "unknown-gnb")
    s = _sessions(lab)[0]
    _send_gtpu(lab, "server", s.ul_teid, str(s.address))  # a valid TEID and inner source, from the server
    lab.wait_status("upf", lambda st: st["drops"].get("unknown-gnb", 0) >= before + 5)


def test_upf_drops_another_sessions_inner_address_under_a_teid(lab: RanLab):
    """A gNB-side forger: session 1's TEID carrying session 2's address."""
    before = _drops(lab, "spoofed-source")
    one, two = _sessions(lab)[:2]
    _send_gtpu(lab, "gnb", one.ul_teid, str(two.address))
    lab.wait_status("upf", lambda st: st["drops"].get("spoofed-source", 0) >= before + 5)


def test_upf_drops_a_packet_to_another_session_or_to_itself(lab: RanLab):
    """A tester's UE reached another UE (another slice) through the UPF: decapsulated into N6, the packet
    was routed straight back out through N6 to the other session, a path no switch sees; and a UE reached
    the UPF's own stack. Both are dropped before N6, counted."""
    one, two = _sessions(lab)[:2]
    ul_before = lab.status("upf")["counters"]["ul_packets"]
    for dst, reason in ((str(two.address), "to-session"), (lab.roles["upf"], "to-upf"), ("224.0.0.1", "to-upf")):
        before = _drops(lab, reason)
        _send_gtpu(lab, "gnb", one.ul_teid, str(one.address), inner_dst=dst)
        lab.wait_status("upf", lambda st: st["drops"].get(reason, 0) >= before + 5)
    assert lab.status("upf")["counters"]["ul_packets"] == ul_before  # none of them went on to N6


def test_upf_drops_a_ue_spoofing_its_inner_source(lab: RanLab):
    before = _drops(lab, "spoofed-source")
    ul_before = lab.status("upf")["counters"]["ul_packets"]
    # raw IP out of uesimtun0 (the route to the server) with a source that is not the session's
    lab.python("ue", _icmp_packet("10.45.0.99", lab.roles["server"]) + f"""
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(5):
    raw.sendto(pkt, ("{lab.roles['server']}", 0))
""")
    st = lab.wait_status("upf", lambda s: s["drops"].get("spoofed-source", 0) >= before + 5)
    assert st["counters"]["ul_packets"] == ul_before  # none of them went on to N6


def test_throughput_through_the_chain_and_directly(lab: RanLab, record_property):
    """iperf3 TCP UE -> server through UE, gNB and UPF vs the same two namespaces over the bridge (reported)."""
    direct = lab.iperf(lab.addr(DIRECT_HOST), seconds=3, bind=lab.roles["ue"])
    chain = lab.iperf(lab.roles["server"], seconds=3)
    down = lab.iperf(lab.roles["server"], seconds=3, reverse=True)
    record_property("direct_bps", direct["bps"])
    record_property("chain_bps", chain["bps"])
    record_property("chain_reverse_bps", down["bps"])
    print(f"\niperf3 TCP direct {direct['bps'] / 1e9:.3f} Gbit/s, through the 5G chain {chain['bps'] / 1e9:.3f} "
          f"Gbit/s up, {down['bps'] / 1e9:.3f} Gbit/s down ({chain['bps'] / direct['bps']:.2f}x)")
    assert chain["bps"] > 20e6 and down["bps"] > 20e6


def test_a_ue_process_stays_small(lab: RanLab, record_property):
    rss = {role: lab.rss_kib(role) for role in ("ue", "rogue", "gnb", "core", "upf")}
    record_property("rss_kib", rss)
    print(f"\nresident memory (KiB): {rss}")
    assert rss["ue"] < 20 * 1024 and rss["rogue"] < 20 * 1024


def test_sigterm_stops_each_program_cleanly(lab: RanLab):
    assert lab.stop("ue") == 0
    links = lab.exec("ue", "ip", "-br", "link").stdout
    assert "uesimtun" not in links  # the TUNs (and their routes) went with the process
    assert "stop signal=SIGTERM" in lab.log_text("ue")
    gnb = lab.wait_status("gnb", lambda s: s["counters"]["ues"] == 1)  # the UE said goodbye (RLS RELEASE)
    assert [u["ue_id"] for u in gnb["ues"]] == [999]
    forwarding = lab.exec("upf", "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()
    assert forwarding == "1"
    for role in ("rogue", "gnb", "core", "upf"):
        assert lab.stop(role) == 0, lab.log_text(role)[-1000:]
    assert "upfn6" not in lab.exec("upf", "ip", "-br", "link").stdout
    assert lab.exec("upf", "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == lab.initial_forwarding
