"""Slice enforcement on a real network (topologies/minimal.yaml with its UEs as plain hosts, `ran:
{backend: off}`, so the rules sit on their own ports; the 5G path's sessions are checked in
tests/integration/test_ran_path.py): root, Open vSwitch, mnexec.

Each test builds its own run under a private state dir, bounds every wait, and checks
that nothing of the run is left afterwards. Whether a packet arrived is decided by a
capture at the target, not by the lack of a reply.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from tests.helpers import cli, leftovers, minimal_plain

from testbed.engine.testbed import Testbed
from testbed.engine.ovs import meter_stats
from testbed.topology.loader import load
from testbed.topology.model import Service

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("network")]


@pytest.fixture
def MINIMAL(tmp_path):  # noqa: N802 - the file's name as the tests used it
    return minimal_plain(tmp_path)

LISTEN = """
import socket, sys, time
socks = []
for p in map(int, sys.argv[1:]):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", p))
    except OSError:  # the node's real server (testbed.services) already answers on this port
        s.close(); continue
    s.listen(16); s.setblocking(False); socks.append(s)
print("ready", flush=True)
end = time.time() + 120
while time.time() < end:
    for s in socks:
        try:
            c, _ = s.accept(); c.close()
        except BlockingIOError:
            pass
    time.sleep(0.01)
"""
# 4 s: after a blocked attempt the client's ARP entry is INCOMPLETE and is re-probed only
# once a second, so a connection right after a grant may need a few seconds.
CONNECT = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4).close()"
# For flows that must be blocked: the SYN goes at 0 s and is retransmitted at 1 s.
CONNECT_BLOCKED = CONNECT.replace("timeout=4", "timeout=2")
# Send 5 crafted TCP SYNs from the node's interface with a chosen source IP (and MAC).
SPOOF = """
import sys
from scapy.all import Ether, IP, TCP, sendp, conf, get_if_list
conf.verb = 0
iface = [i for i in get_if_list() if i != "lo"][0]
src_mac, dst_mac, src_ip, dst_ip, port = sys.argv[1:6]
sendp(Ether(src=src_mac, dst=dst_mac) / IP(src=src_ip, dst=dst_ip) / TCP(sport=40404, dport=int(port), flags="S"),
      iface=iface, count=5, inter=0.05)
"""


def listen(tb, node: str, *ports: int) -> subprocess.Popen:
    p = tb.node(node).popen([sys.executable, "-c", LISTEN, *map(str, ports)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def tcp_ok(tb, src: str, dst: str, port: int) -> bool:
    return tb.node(src).run([sys.executable, "-c", CONNECT, tb.node(dst).ip, str(port)], timeout=10).returncode == 0


def ping_ok(tb, src: str, dst: str, count: int = 3) -> bool:
    """Up to `count` single pings (the first packets on a fresh userspace port may be lost)."""
    for _ in range(count):
        if tb.node(src).run(["ping", "-n", "-c1", "-W1", tb.node(dst).ip], timeout=5).returncode == 0:
            return True
    return False


CONTROL = " > 127.0.0.1.9:"  # how tcpdump -nn prints the control datagram to 127.0.0.1:9
SEND_CONTROL = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'ctl', ('127.0.0.1', 9))"


def _tcpdump(tb, node: str, bpf: str, limit: float = 30.0) -> subprocess.Popen:
    """tcpdump in `node` on all its interfaces (loopback too), once it is attached."""
    cap = tb.node(node).popen(["timeout", str(limit), "tcpdump", "-nn", "-l", "-i", "any", bpf],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = cap.stderr.readline()  # "listening on any, ..." once attached
        if "listening" in line:
            return cap
        if not line and cap.poll() is not None:
            break
    cap.kill()
    raise AssertionError(f"tcpdump in {node} did not start: {cap.stderr.read()}")


def _lines(tb, node: str, cap: subprocess.Popen) -> list[str]:
    """Stop a capture after a control datagram to 127.0.0.1:9 in `node`, which it must have seen:
    proof that it was still capturing after the packets under test."""
    assert tb.node(node).run([sys.executable, "-c", SEND_CONTROL], timeout=10).returncode == 0
    time.sleep(0.5)
    cap.terminate()  # `timeout` passes it on to tcpdump
    out, _ = cap.communicate(timeout=10)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert any(CONTROL in ln for ln in lines), f"the capture in {node} missed its control packet: {out!r}"
    return [ln for ln in lines if CONTROL not in ln]


def captured(tb, node: str, bpf: str, action, limit: float = 20.0) -> int:
    """Packets matching `bpf` that arrive at `node` while `action()` runs (and 0.5 s after)."""
    cap = _tcpdump(tb, node, f"({bpf}) or (udp and dst host 127.0.0.1 and dst port 9)", limit)
    try:
        action()
    finally:
        lines = _lines(tb, node, cap)
    return len(lines)


def _flow_bpf(tb, src: str, dst: str, proto: str, port: int) -> str:
    what = {"tcp": f"tcp dst port {port} and tcp[tcpflags] & tcp-syn != 0",
            "icmp": "icmp[icmptype] == icmp-echo"}[proto]
    return f"src host {tb.node(src).ip} and dst host {tb.node(dst).ip} and {what}"


def assert_blocked(tb, src: str, dst: str, proto: str = "tcp", port: int = 0) -> None:
    """The attempt from `src` really leaves it and is not captured at `dst`.

    Decided by captures at both ends, not by the missing reply: a SYN or echo request
    that leaks while its reply is dropped fails here. `src` is given `dst`'s MAC
    (a permanent neighbour entry, removed afterwards) because ARP across slices is
    blocked too, and without it the kernel would never send the packet under test.
    """
    s, d = tb.node(src), tb.node(dst)
    route = s.run(["ip", "-o", "route", "get", d.ip], timeout=10).stdout.split()
    dev = route[route.index("dev") + 1]
    assert s.run(["ip", "neigh", "replace", d.ip, "lladdr", d.mac, "dev", dev, "nud", "permanent"],
                 timeout=10).returncode == 0
    bpf = _flow_bpf(tb, src, dst, proto, port)
    at_src = _tcpdump(tb, src, f"({bpf}) or (udp and dst host 127.0.0.1 and dst port 9)")
    at_dst = _tcpdump(tb, dst, f"({bpf}) or (udp and dst host 127.0.0.1 and dst port 9)")
    try:
        if proto == "tcp":
            r = s.run([sys.executable, "-c", CONNECT_BLOCKED, d.ip, str(port)], timeout=10)
        else:
            r = s.run(["ping", "-n", "-c2", "-i0.5", "-W1", d.ip], timeout=10)
    finally:
        left, arrived = _lines(tb, src, at_src), _lines(tb, dst, at_dst)
        s.run(["ip", "neigh", "del", d.ip, "dev", dev], timeout=10)
    what = f"{src} -> {dst} {proto}{f'/{port}' if port else ''}"
    assert left, f"{what}: nothing left {src}, so this proves nothing"
    assert not arrived, f"{what}: LEAK, captured at {dst}: {arrived}"
    assert r.returncode != 0, f"{what}: got a reply though nothing arrived?"


def spoof(tb, src: str, as_ip: str, dst: str, port: int) -> None:
    d = tb.node(dst)
    r = tb.node(src).run([sys.executable, "-c", SPOOF, tb.node(src).mac, d.mac, as_ip, d.ip, str(port)], timeout=30)
    assert r.returncode == 0, r.stderr


def clinical_meter(tb) -> int:
    import json as _json

    return _json.loads((tb.manifest.dir / "plan.json").read_text())["slices"]["clinical"]["meter_id"]


def status(tb) -> dict:
    return tb.controller.status()


def test_slices_enforced_on_real_network(state_dir, MINIMAL):
    t0 = time.monotonic()
    with Testbed.from_file(MINIMAL) as tb:
        rid = tb.run_id
        assert tb.manifest.controller["app"] == "controllers.slicing"  # app: auto picks it for sliced files
        assert 0 < tb.timings["rules_installed_s"] < 10
        procs = [listen(tb, "emr", 443, 22), listen(tb, "pacs", 104)]
        try:
            assert ping_ok(tb, "dr-tablet-01", "emr") and ping_ok(tb, "dr-tablet-01", "pacs")
            assert tcp_ok(tb, "dr-tablet-01", "emr", 443) and tcp_ok(tb, "dr-tablet-01", "pacs", 104)
            assert ping_ok(tb, "kiosk-01", "emr") and tcp_ok(tb, "kiosk-01", "emr", 443)
            # other slice, forbidden port, unsliced host: blocked (captured at neither target)
            assert_blocked(tb, "kiosk-01", "pacs", "tcp", 104)
            assert_blocked(tb, "kiosk-01", "pacs", "icmp")
            assert_blocked(tb, "dr-tablet-01", "emr", "tcp", 22)
            assert_blocked(tb, "gnb-clinic", "emr", "tcp", 443)
            # spoofed source IP: the kiosk claims the doctor's address; the capture at PACS decides
            doc_ip = tb.node("dr-tablet-01").ip
            bpf = f"tcp dst port 104 and src host {doc_ip} and src port 40404"
            assert captured(tb, "pacs", bpf, lambda: spoof(tb, "kiosk-01", doc_ip, "pacs", 104)) == 0
            # control: the same crafted packets from the doctor's own tablet do arrive
            assert captured(tb, "pacs", bpf, lambda: spoof(tb, "dr-tablet-01", doc_ip, "pacs", 104)) >= 1
            # steady workload: admitted traffic causes no packet-in
            before = status(tb)["packet_in"]
            r = tb.node("dr-tablet-01").run(["ping", "-n", "-q", "-c", "50", "-i", "0.02", tb.node("emr").ip])
            assert " 0% packet loss" in r.stdout, r.stdout
            assert status(tb)["packet_in"] == before == 0
            # `testbed flows` shows the rules per slice, with counters
            # (OVS's userspace datapath folds packet counters into flow stats about once a second)
            deadline = time.monotonic() + 5
            while True:
                doc = json.loads(cli("flows", "clinic-sw", "--run", rid, "--json").stdout)["clinic-sw"]
                # (the first echo request opens the connection, the others pass as established)
                counted = sum(f["packets"] for f in doc["flows"]
                              if f["slice"] == "clinical" and f["kind"] in ("icmp", "state")) >= 50
                if counted or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert {"clinical", "kiosk", "-"} <= {f["slice"] for f in doc["flows"]}
            assert counted
            assert "clinical" in cli("flows", "--run", rid, "--slice", "clinical").stdout
        finally:
            for p in procs:
                p.kill()
    assert leftovers(rid, state_dir) == []
    assert time.monotonic() - t0 < 120


def test_controller_death_fails_secure_and_restart_restores(state_dir, MINIMAL):
    with Testbed.from_file(MINIMAL) as tb:
        rid = tb.run_id
        procs = [listen(tb, "emr", 443), listen(tb, "pacs", 104)]
        try:
            assert tcp_ok(tb, "dr-tablet-01", "pacs", 104)
            tb.controller.proc.kill()
            tb.controller.proc.wait(10)
            # switches keep their rules (fail_mode=secure): admitted flows pass, nothing else does
            assert tcp_ok(tb, "dr-tablet-01", "pacs", 104) and tcp_ok(tb, "kiosk-01", "emr", 443)
            assert ping_ok(tb, "dr-tablet-01", "emr")
            assert_blocked(tb, "kiosk-01", "pacs", "tcp", 104)
            assert_blocked(tb, "kiosk-01", "pacs", "icmp")
            waited = tb.restart_controller(timeout=30)
            assert waited < 30 and tb.timings["controller_restart_s"] == waited
            st = status(tb)
            assert set(st["applied"]) == set(tb.layout.dpids.values())
            assert tcp_ok(tb, "dr-tablet-01", "pacs", 104)
            assert_blocked(tb, "kiosk-01", "pacs", "tcp", 104)
        finally:
            for p in procs:
                p.kill()
    assert leftovers(rid, state_dir) == []


def test_grant_and_revoke_while_running(state_dir, MINIMAL):
    with Testbed.from_file(MINIMAL) as tb:
        rid = tb.run_id
        procs = [listen(tb, "emr", 443), listen(tb, "pacs", 104)]
        try:
            assert_blocked(tb, "kiosk-01", "pacs", "tcp", 104)
            # an admitted flow of another member keeps running across the changes
            bg = tb.node("dr-tablet-01").popen(["ping", "-n", "-q", "-c", "150", "-i", "0.02", tb.node("emr").ip],
                                               stdout=subprocess.PIPE, text=True)
            out = cli("slice", "grant", "clinical", "kiosk-01", "--run", rid).stdout
            assert "kiosk-01 -> pacs" in out
            assert tcp_ok(tb, "kiosk-01", "pacs", 104)
            cli("slice", "revoke", "clinical", "kiosk-01", "--run", rid)
            assert_blocked(tb, "kiosk-01", "pacs", "tcp", 104)
            assert tcp_ok(tb, "kiosk-01", "emr", 443)  # its own slice is untouched
            cli("slice", "revoke", "clinical", "dr-tablet-01", "--run", rid)
            assert_blocked(tb, "dr-tablet-01", "pacs", "tcp", 104)
            cli("slice", "grant", "clinical", "dr-tablet-01", "--run", rid)
            assert tcp_ok(tb, "dr-tablet-01", "pacs", 104)
            # the admitted ping to EMR lost nothing while rules were added and removed
            bg_out, _ = bg.communicate(timeout=30)
            assert " 0% packet loss" in bg_out, bg_out
            assert status(tb)["generation"] == 5
            bad = cli("slice", "grant", "no-such-slice", "kiosk-01", "--run", rid, check=False)
            assert bad.returncode == 2
        finally:
            for p in procs:
                p.kill()
    assert leftovers(rid, state_dir) == []


def test_meter_holds_a_udp_flood_to_the_slice_rate(state_dir, MINIMAL):
    rate = 20_000_000
    topo = load(MINIMAL).model_copy(deep=True)
    clinical = next(s for s in topo.slices if s.name == "clinical")
    clinical.rate = rate
    topo.node("emr").services += [Service(name="iperf", port=5201, proto="tcp"),
                                  Service(name="iperf-u", port=5201, proto="udp")]
    clinical.services += ["iperf", "iperf-u"]
    with Testbed(topo, source=str(MINIMAL)) as tb:
        rid = tb.run_id
        srv = tb.node("emr").popen(["iperf3", "-s", "-1", "-p", "5201"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            assert ping_ok(tb, "dr-tablet-01", "emr", count=5)
            time.sleep(0.3)
            r = tb.node("dr-tablet-01").run(["iperf3", "-c", tb.node("emr").ip, "-p", "5201", "-u", "-b", "100M",
                                             "-t", "3", "-J"], timeout=30)
            res = json.loads(r.stdout)["end"]
            got = res.get("sum_received", res["sum"])["bits_per_second"]
            sent = res["sum"]["bits_per_second"]
            seconds = res["sum"]["seconds"]
        finally:
            srv.kill()
        meter = meter_stats(tb.manifest.nodes["clinic-sw"].internal)[clinical_meter(tb)]
        passed = (meter["bytes"] - meter["dropped_bytes"]) * 8 / seconds
        print(f"meter: sent {sent / 1e6:.1f} Mbit/s, meter passed {passed / 1e6:.2f} Mbit/s, "
              f"received {got / 1e6:.2f} Mbit/s, slice rate {rate / 1e6:.0f} Mbit/s")
        assert sent > 2 * rate  # it really was a flood
        assert meter["dropped"] > 0  # the drop band threw the excess away
        assert got <= 1.15 * rate and passed <= 1.15 * rate
        # No lower bound: on an idle machine `got` is within 1% of the rate (20.07 of 20 Mbit/s),
        # but with the host overloaded (load average 25+ on 2 cores) the userspace meter was seen
        # passing only ~1 Mbit/s while dropping the rest - under investigation, see the issue.
        assert passed > 0
    assert leftovers(rid, state_dir) == []


def test_allow_all_app_is_really_broken(state_dir, MINIMAL):
    """The deliberately broken app the prober's tests use: cross-slice traffic passes."""
    with Testbed.from_file(MINIMAL, controller_app="allow-all") as tb:
        rid = tb.run_id
        p = listen(tb, "pacs", 104)
        try:
            assert tcp_ok(tb, "kiosk-01", "pacs", 104)
        finally:
            p.kill()
    assert leftovers(rid, state_dir) == []
