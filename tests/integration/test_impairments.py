"""Link impairments declared in a topology are applied on the wire, and change live.

These go through the whole testbed (topology file -> relay or netem on a built
link), measured with real packets; the relay itself is tested in tests/impair.
"""
from __future__ import annotations

import re
import statistics

from testbed import Testbed
from testbed.checks.faults import Drill, inject, restore
from testbed.topology.scenario import Fault
from testbed.topology.loader import parse_text

from tests.helpers import cli, leftovers

TOPO = """
name: impaired
nodes:
  - {name: s1, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
  - {name: c, kind: host}
links:
  - {endpoints: [a, s1], delay: 10ms}
  - {endpoints: [b, s1]}
  - {endpoints: [c, s1], bw: 50Mbit, delay: 0ms}
"""


def _rtts(out: str) -> list[float]:
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


def _median_rtt(tb: Testbed, src: str, dst: str, n: int = 30) -> float:
    out = tb.node(src).cmd(f"ping -n -c {n} -i 0.05 -W 2 {tb.node(dst).ip}")
    rtts = _rtts(out)
    assert len(rtts) >= n * 0.9, out
    return statistics.median(rtts[2:])  # skip the first (ARP) samples


def test_delay_applied_and_changed_live(state_dir):
    with Testbed(parse_text(TOPO, "impaired.yaml")) as tb:
        rid = tb.run_id
        base = _median_rtt(tb, "b", "c")  # no delay on either link
        rtt = _median_rtt(tb, "a", "b")
        assert abs((rtt - base) - 20.0) <= 1.0, (rtt, base)  # 10 ms each way
        # change it from another process, as a user would
        r = cli("link", "set", "--run", rid, "a:s1", "delay=30ms")
        assert "delay=30ms" in r.stdout
        rtt = _median_rtt(tb, "a", "b")
        assert abs((rtt - base) - 60.0) <= 1.5, (rtt, base)
        # down: nothing passes; up: back
        cli("link", "set", "--run", rid, "a:s1", "down")
        out = tb.node("a").cmd(f"ping -n -c 3 -i 0.2 -W 1 {tb.node('b').ip}")
        assert " 0 received" in out, out
        tb.set_link("a:s1", ["up", "delay=10ms"])
        assert abs((_median_rtt(tb, "a", "b") - base) - 20.0) <= 1.0
        # any link can be cut and restored (fault injection), impaired or not
        assert "b:s1: down" in cli("link", "set", "--run", rid, "b:s1", "down").stdout
        out = tb.node("c").cmd(f"ping -n -c 2 -i 0.2 -W 1 {tb.node('b').ip}")
        assert " 0 received" in out, out
        cli("link", "set", "--run", rid, "s1:b", "up")
        assert _median_rtt(tb, "c", "b", n=10) < 5
        assert cli("link", "set", "--run", rid, "b:s1", "delay=5ms", check=False).returncode == 2
        status = cli("status", "--run", rid).stdout
        assert "a:s1" in status and "delay=10ms" in status
        # sanity: the helper sees the live run's relays (one per impaired link) and controller
        live = leftovers(rid, state_dir)
        relays = 2 if tb.manifest.impairment_backend == "userspace" else 0
        assert sum(x.startswith("relay ") for x in live) == relays, live
        assert sum(x.startswith("controller ") for x in live) == 1, live
    assert leftovers(rid, state_dir) == []


def test_loss_applied(state_dir):
    with Testbed(parse_text(TOPO, "impaired.yaml")) as tb:
        tb.set_link("a:s1", ["delay=0ms", "loss=5%"], direction="a_to_b")
        # 2000 one-way UDP datagrams a -> b, counted at b (replies would double-count loss)
        b = tb.node("b")
        sink = b.popen(["timeout", "20", "python3", "-c",
                        "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
                        "s.bind(('0.0.0.0',9999));s.settimeout(3);n=0\n"
                        "try:\n while True: s.recv(100); n+=1\nexcept socket.timeout: print(n)"],
                       stdout=__import__("subprocess").PIPE, text=True)
        tb.node("a").cmd("sleep 0.3")
        tb.node("a").run(["python3", "-c",
                          "import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                          f"for i in range(2000): s.sendto(b'x'*64,('{b.ip}',9999)); time.sleep(0.0005)"])
        got = int(sink.communicate(timeout=30)[0].strip())
        loss = 100.0 * (2000 - got) / 2000
        assert 3.5 <= loss <= 6.5, loss


def test_rate_via_htb(state_dir):
    with Testbed(parse_text(TOPO, "impaired.yaml")) as tb:
        srv = tb.node("b").popen(["iperf3", "-s", "-1"], stdout=__import__("subprocess").DEVNULL)
        tb.node("c").cmd("sleep 0.5")
        out = tb.node("c").run(["iperf3", "-c", tb.node("b").ip, "-t", "3", "-J"], timeout=30).stdout
        srv.wait(timeout=10)
        import json

        bps = json.loads(out)["end"]["sum_received"]["bits_per_second"]
        assert 45e6 <= bps <= 55e6, bps


DIRECTIONAL = """
name: directional
nodes:
  - {name: s1, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
links:
  - endpoints: [a, s1]
    a_to_b: {delay: 10ms}                      # a -> switch only
    b_to_a: {duplicate: 50%}                   # switch -> a only
  - {endpoints: [b, s1], jitter: 5ms, jitter_dist: uniform, delay: 10ms}
"""


def test_per_direction_duplication_and_jitter_from_the_file(state_dir):
    with Testbed(parse_text(DIRECTIONAL, "directional.yaml")) as tb:
        rec = tb.manifest.links
        assert rec["a:s1"]["a_to_b"]["delay_ms"] == 10 and rec["a:s1"]["b_to_a"]["delay_ms"] == 0
        assert rec["a:s1"]["b_to_a"]["duplicate_pct"] == 50
        assert rec["b:s1"]["a_to_b"]["jitter_dist"] == "uniform"
        out = tb.node("a").cmd(f"ping -n -c 40 -i 0.05 -W 2 {tb.node('b').ip}")
        rtts = _rtts(out)
        # 10 ms one way on a's link + 10 ms each way on b's link = 30 ms, +-5 ms uniform jitter
        # twice (median ~0), plus the unimpaired RTT through two relays (~1-3 ms idle, up to ~7 ms on a
        # loaded 2-core host). A delay missing or doubled in any direction moves the median by 10 ms.
        med = statistics.median(rtts[2:])
        assert 28 <= med <= 38, med
        assert statistics.pstdev(rtts[2:]) > 1.0  # jitter is there
        assert max(rtts[2:]) - min(rtts[2:]) <= 21  # bounded: uniform +-5 ms per direction, plus noise
        assert "DUP!" in out  # replies toward a are duplicated (50%)


def _iperf(tb: Testbed, src: str, dst: str, seconds: int = 2) -> float:
    import json
    import subprocess

    srv = tb.node(dst).popen(["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    try:
        tb.node(src).cmd("sleep 0.5")
        out = tb.node(src).run(["iperf3", "-c", tb.node(dst).ip, "-t", str(seconds), "-J"], timeout=30).stdout
    finally:
        srv.wait(timeout=10)
    return json.loads(out)["end"]["sum_received"]["bits_per_second"]


def _tso(tb: Testbed, node: str, intf: str) -> str:
    """TCP segmentation offload of a link end: a host's in its namespace, a switch port in the root one."""
    import subprocess

    argv = ["ethtool", "-k", intf]
    out = (subprocess.run(argv, capture_output=True, text=True) if node in tb.layout.dpids
           else tb.node(node).run(argv)).stdout
    return re.search(r"^tcp-segmentation-offload: (\w+)", out, re.M).group(1)


def test_a_delay_alone_carries_tcp_frames_whole_until_loss_needs_packets(state_dir):
    """With userspace TSO, a link with a constant delay keeps 64 KB TCP frames through its relay (the delay
    acts on a frame as on each of its packets); set loss on it and both ends cut packets again before it
    reaches the relay (so loss acts per packet); take the loss away and the frames come back."""
    with Testbed(parse_text(TOPO, "impaired.yaml")) as tb:
        rec = tb.manifest.links["a:s1"]
        if not tb.manifest.tso:  # the daemon moves MTU frames everywhere: nothing to keep
            assert "frames" not in rec and "frames" not in tb.manifest.links["c:s1"]
            return
        assert rec["segmenting"] is True and [n for n, _ in rec["frames"]] == ["a", "s1"]
        assert "frames" not in tb.manifest.links["c:s1"]  # a rate needs packets
        intf = rec["frames"][0][1]
        handle = tb.link_handles["a:s1"]
        _iperf(tb, "a", "b")
        whole = handle.stats()["a_to_b"]["gso_frames"]
        assert whole > 100, whole
        tb.set_link("a:s1", ["loss=0.01%"], direction="a_to_b")
        assert rec["segmenting"] is False and _tso(tb, "a", intf) == "off"
        _iperf(tb, "a", "b")
        after = handle.stats()["a_to_b"]
        assert after["gso_frames"] == whole and after["rx_packets"] > 10_000, after
        tb.set_link("a:s1", ["loss=0%"], direction="a_to_b")
        assert rec["segmenting"] is True and _tso(tb, "a", intf) == "on"
        _iperf(tb, "a", "b")
        assert handle.stats()["a_to_b"]["gso_frames"] > whole
        # an impair drill does the same, and its restore gives the frames back
        drill = Drill(Fault(name="lossy", type="impair", target="a:s1", set=["jitter=2ms"], at=0, duration=1000),
                      [], [])
        inject(tb, drill)
        assert rec["segmenting"] is False and _tso(tb, "s1", rec["frames"][1][1]) == "off"
        restore(tb, drill)
        assert rec["segmenting"] is True and _tso(tb, "s1", rec["frames"][1][1]) == "on"
        assert tb.manifest.links["a:s1"]["a_to_b"]["jitter_ms"] == 0
