"""Stateful slice rules on a real network: only the granted side opens connections, and a revoke
cuts live sessions (root, Open vSwitch, mnexec, nmap).

A small sliced topology of its own: a tablet at a ward switch reaching a server at the core
switch over TCP and UDP services of its slice. Whether a packet arrived is decided by a capture
at the target (tcpdump in its namespace), with a control packet proving the capture was live,
and a capture at the sender proving the packets under test were really sent. The provider side
attacks as a security tester would: nmap SYN, ACK, FIN, Xmas and NULL scans and UDP from the
service's own port (`--source-port`), and from another port. The same attacks against the
stateless app (the negative control) must be captured.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from tests.helpers import cli, leftovers

from testbed.engine.ovs import dump_conntrack
from testbed.engine.testbed import Testbed
from testbed.slicing.conntrack import ct_zone, parse_conntrack

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("network")]

TOPOLOGY = """\
name: stateful
defaults:
  addressing: {pool: 10.78.0.0/24}
nodes:
  - {name: core, kind: switch}
  - {name: ward-sw, kind: switch}
  - {name: srv, kind: server, services: [{name: app, port: 7443}, {name: app-u, port: 7500, proto: udp},
                                          {name: stream, port: 7600}]}
  - {name: tablet, kind: host}
  - {name: kiosk, kind: host}
links:
  - {endpoints: [srv, core]}
  - {endpoints: [ward-sw, core]}
  - {endpoints: [tablet, ward-sw]}
  - {endpoints: [kiosk, ward-sw]}
slices:
  - {name: clinical, sst: 1, fiveqi: 7, members: [tablet], services: [app, app-u, stream]}
  - {name: kiosk, sst: 3, members: [kiosk], services: [app]}
"""
TCP_PORT, UDP_PORT, STREAM_PORT = 7443, 7500, 7600
MEMBER_PORTS = "22,80,3389,5900,40000"

# On the server: accept TCP and echo UDP datagrams back (any size); count stream bytes per line.
SERVER = """
import select, socket, sys, time
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("0.0.0.0", int(sys.argv[1]))); t.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", int(sys.argv[2])))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", int(sys.argv[3]))); s.listen(8)
print("ready", flush=True)
socks, end = [t, u, s], time.time() + 170
while time.time() < end:
    for x in select.select(socks, [], [], 0.2)[0]:
        if x is t:
            x.accept()[0].close()
        elif x is u:
            d, a = u.recvfrom(65535); u.sendto(d, a)
        elif x is s:
            c, _ = s.accept(); socks.append(c)
        else:
            d = x.recv(65535)
            if not d:
                socks.remove(x); x.close()
            else:
                print("got", len(d), flush=True)
"""
# On the tablet: one UDP datagram of N bytes (fragmented on the wire), its echo back.
UDP_ECHO = """
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
for _ in range(3):
    u.sendto(b"x" * int(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))
    try:
        print(len(u.recv(65535))); break
    except socket.timeout:
        pass
"""
# On the tablet: a long-lived TCP session sending a line every 50 ms until killed.
STREAM = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); c.setblocking(False)
print("connected", c.getsockname()[1], flush=True)
for i in range(3000):
    try:
        c.send(b"tick %d\\n" % i)
    except BlockingIOError:
        pass
    time.sleep(0.05)
"""
CONTROL = " > 127.0.0.1.9:"
SEND_CONTROL = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'ctl', ('127.0.0.1', 9))"


class Capture:
    """tcpdump in a node on all its interfaces, stopped after a control datagram it must have seen."""

    def __init__(self, tb, node: str, bpf: str, limit: float = 60.0):
        self.tb, self.node = tb, node
        self.p = tb.node(node).popen(["timeout", str(limit), "tcpdump", "-nn", "-l", "-i", "any",
                                      f"({bpf}) or (udp and dst host 127.0.0.1 and dst port 9)"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if "listening" in line:
                return
            if not line and self.p.poll() is not None:
                break
        self.p.kill()
        raise AssertionError(f"tcpdump in {node} did not start: {self.p.stderr.read()}")

    def stop(self) -> list[str]:
        assert self.tb.node(self.node).run([sys.executable, "-c", SEND_CONTROL], timeout=10).returncode == 0
        time.sleep(0.5)
        self.p.terminate()
        out, _ = self.p.communicate(timeout=10)
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert any(CONTROL in ln for ln in lines), f"the capture in {self.node} missed its control packet: {out!r}"
        return [ln for ln in lines if CONTROL not in ln]


def attacks(tb) -> dict[str, list[str]]:
    """What a tester on the server sends to the tablet: nmap scans from the service ports and from
    another port, and UDP from the UDP service's port. Returns {attack: packets captured at the tablet},
    each attack checked to have left the server."""
    srv, tab = tb.node("srv"), tb.node("tablet")
    scans = {f"{flag} scan from :{TCP_PORT}": ["-s" + flag[0], "--source-port", str(TCP_PORT), "-p", MEMBER_PORTS]
             for flag in ("SYN", "ACK", "FIN", "Xmas", "NULL")}
    scans["SYN scan from :50000"] = ["-sS", "--source-port", "50000", "-p", MEMBER_PORTS]
    scans[f"UDP from :{UDP_PORT}"] = ["-sU", "--source-port", str(UDP_PORT), "-p", "53,161,5060"]
    out = {}
    for name, args in scans.items():
        bpf = f"ip and src host {srv.ip} and dst host {tab.ip}"
        at_src, at_dst = Capture(tb, "srv", bpf), Capture(tb, "tablet", bpf)
        try:
            # --send-ip: the kernel's ARP (granted) rather than nmap's own; -Pn: no ping first
            r = srv.run(["nmap", "-n", "-Pn", "--send-ip", "--max-retries", "1", "--host-timeout", "20s",
                         *args, tab.ip], timeout=60)
        finally:
            left, arrived = at_src.stop(), at_dst.stop()
        assert r.returncode == 0, r.stderr
        assert left, f"{name}: nothing left srv, so this proves nothing"
        out[name] = arrived
    return out


def _state(tb) -> str:
    """For a failure message: the run's tracked connections and its tables 1-2 with counters."""
    out = [dump_conntrack(ct_zone(tb.run_id))]
    for b in tb.manifest.bridges:
        r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", b, "table=1"], capture_output=True,
                           text=True, timeout=20)
        out.append(r.stdout)
    return "\n".join(out)


def _topology(write_yaml):
    return write_yaml(TOPOLOGY, "stateful.yaml")


def _server(tb) -> subprocess.Popen:
    p = tb.node("srv").popen([sys.executable, "-c", SERVER, str(TCP_PORT), str(UDP_PORT), str(STREAM_PORT)],
                             stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def _tcp_ok(tb, src: str, dst: str, port: int) -> bool:
    code = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4).close()"
    return tb.node(src).run([sys.executable, "-c", code, tb.node(dst).ip, str(port)], timeout=10).returncode == 0


@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap (scripts/setup.sh installs it)")
def test_only_the_granted_side_opens_connections(state_dir, write_yaml):
    with Testbed.from_file(_topology(write_yaml)) as tb:
        rid = tb.run_id
        srv = _server(tb)
        try:
            # the member's TCP, UDP (a 3000-byte first datagram: fragments both ways) and ICMP work
            assert _tcp_ok(tb, "tablet", "srv", TCP_PORT)
            r = tb.node("tablet").run([sys.executable, "-c", UDP_ECHO, tb.node("srv").ip, str(UDP_PORT), "3000"])
            assert r.stdout.split() == ["3000"], r
            zone = json.loads((tb.manifest.dir / "plan.json").read_text())["conntrack"]["zone"]
            assert zone == ct_zone(rid)  # the run's own zone of the shared tracker
            assert [c.dport for c in parse_conntrack(dump_conntrack(zone)) if c.proto == "udp"] == [UDP_PORT]
            for size in ("56", "3000"):
                r = tb.node("tablet").run(["ping", "-n", "-c3", "-i0.2", "-W1", "-s", size, tb.node("srv").ip])
                assert " 0% packet loss" in r.stdout or " 33% packet loss" in r.stdout, r.stdout
            assert _tcp_ok(tb, "kiosk", "srv", TCP_PORT)
            # the server opens nothing, whatever its source port or TCP flags
            got = attacks(tb)
            assert {k: v for k, v in got.items() if v} == {}, "LEAK: captured at the tablet"
            # the tablet's connections still work, and none of this asked the controller
            assert _tcp_ok(tb, "tablet", "srv", TCP_PORT), _state(tb)
            st = tb.controller.status()
            assert st["packet_in"] == 0 and st["errors"] == []
        finally:
            srv.kill()
    assert leftovers(rid, state_dir) == []


@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap (scripts/setup.sh installs it)")
def test_the_stateless_app_leaks_what_the_stateful_rules_stop(state_dir, write_yaml):
    """The negative control: the same attacks arrive at the tablet with `--controller-app stateless`."""
    with Testbed.from_file(_topology(write_yaml), controller_app="stateless") as tb:
        rid = tb.run_id
        assert tb.manifest.controller["app"] == "controllers.stateless"
        srv = _server(tb)
        try:
            assert _tcp_ok(tb, "tablet", "srv", TCP_PORT)  # still a slicing app: granted flows work
            got = attacks(tb)
        finally:
            srv.kill()
    leaked = {k for k, v in got.items() if v}
    assert leaked == {f"{f} scan from :{TCP_PORT}" for f in ("SYN", "ACK", "FIN", "Xmas", "NULL")} | {
        f"UDP from :{UDP_PORT}"}, got
    assert leftovers(rid, state_dir) == []


def test_revoke_cuts_a_live_session(state_dir, write_yaml):
    """A TCP session open across `slice revoke`: data arrives before; after, not one segment, not even
    once the tablet is granted again (its tracker entry is gone, and only a SYN opens a connection)."""
    with Testbed.from_file(_topology(write_yaml)) as tb:
        rid = tb.run_id
        srv = _server(tb)
        tab, dst = tb.node("tablet"), tb.node("srv")
        client = tab.popen([sys.executable, "-c", STREAM, dst.ip, str(STREAM_PORT)], stdout=subprocess.PIPE,
                           text=True)
        try:
            line = client.stdout.readline().split()
            assert line[:1] == ["connected"], line
            sport = int(line[1])
            bpf = f"tcp and src host {tab.ip} and src port {sport} and dst port {STREAM_PORT} and greater 60"
            cap = Capture(tb, "srv", bpf)
            time.sleep(1.0)
            before = cap.stop()
            assert len(before) >= 5, f"the session carried no data before the revoke: {before}"
            out = cli("slice", "revoke", "clinical", "tablet", "--run", rid).stdout
            assert "ended 1 live connection" in " ".join(out.split()), out
            cap = Capture(tb, "srv", bpf)
            time.sleep(3.0)  # the tablet keeps sending and retransmitting meanwhile
            assert cap.stop() == [], "data of the revoked session still arrives"
            cli("slice", "grant", "clinical", "tablet", "--run", rid)
            cap = Capture(tb, "srv", bpf)
            time.sleep(3.0)
            assert cap.stop() == [], "the revoked session came back with the grant"
            assert client.poll() is None, "the client gave up by itself: this proved less than it seems"
            assert _tcp_ok(tb, "tablet", "srv", STREAM_PORT)  # a new session is fine
        finally:
            client.kill()
            srv.kill()
    assert leftovers(rid, state_dir) == []
