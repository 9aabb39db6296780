"""The userspace relay measured with real packets between two namespaces.

Each test starts from a no-op relay (fixture) and changes it live through the
control socket, so every test also exercises the no-restart path. Tolerances
are set from what the relay achieves on a 2-core VM, with room for a busy host.
"""
import os
import signal
import subprocess

import pytest

from testbed.impair import ImpairError, Impairment, start_relay

pytestmark = pytest.mark.integration


def test_delay_adds_to_rtt_and_changes_live(netpair, relay):
    base = netpair.ping(50, 0.01).median
    relay.set("a_to_b", Impairment(delay_ms=10))
    relay.set("b_to_a", Impairment(delay_ms=10))
    pid = relay.pid
    rtt = netpair.ping(50, 0.01)
    assert rtt.received == 50
    assert rtt.median - base == pytest.approx(20.0, abs=1.0)
    relay.set("a_to_b", Impairment(delay_ms=30))  # live: same process, no restart
    rtt = netpair.ping(30, 0.01)
    assert relay.pid == pid and relay.alive()
    assert rtt.median - base == pytest.approx(40.0, abs=1.0)


def test_one_way_delay_and_jitter_spread(netpair, relay):
    relay.set("a_to_b", Impairment(delay_ms=20, jitter_ms=4, jitter_dist="normal"))
    r = netpair.udp(500, pps=100)  # 10 ms apart: keeping order holds back few packets, the spread stays
    assert r["loss_pct"] == 0
    assert r["delay_median_ms"] == pytest.approx(20.0, abs=1.0)
    # spread from the interquartile range: robust to a busy host's scheduling outliers
    assert (r["delay_p75_ms"] - r["delay_p25_ms"]) / 1.349 == pytest.approx(4.0, rel=0.25)
    assert r["reordered"] == 0


def test_jitter_does_not_reorder_a_fast_flow(netpair, relay):
    # 1 ms apart with 4 ms of jitter: netem without a rate would reorder a third of them; a link keeps order
    relay.set("a_to_b", Impairment(delay_ms=20, jitter_ms=4, jitter_dist="normal"))
    r = netpair.udp(1000, pps=1000)
    assert r["loss_pct"] == 0 and r["reordered"] == 0
    assert r["delay_min_ms"] >= 20 - 4 * 4  # never earlier than the samples allow
    assert relay.stats()["a_to_b"]["reordered"] == 0


def test_uniform_jitter_stays_in_its_band(netpair, relay):
    relay.set("a_to_b", Impairment(delay_ms=10, jitter_ms=3, jitter_dist="uniform"))
    r = netpair.udp(500, pps=100)  # 10 ms apart: a +-3 ms band never holds one back behind another
    assert r["delay_min_ms"] >= 6.9  # never earlier than the band (late = host scheduling)
    assert r["delay_median_ms"] == pytest.approx(10.0, abs=1.0)
    assert r["delay_p75_ms"] - r["delay_p25_ms"] == pytest.approx(3.0, rel=0.25)  # half of 6 ms


def test_random_loss_one_way(netpair, relay):
    relay.set("a_to_b", Impairment(loss_pct=5))
    r = netpair.udp(2000, pps=4000)
    assert r["loss_pct"] == pytest.approx(5.0, abs=1.5)
    s = relay.stats()["a_to_b"]
    assert s["dropped_loss"] == 2000 - r["unique"]


def test_gilbert_loss_comes_in_bursts(netpair, relay):
    relay.set("a_to_b", Impairment(loss_pct=10, loss_model="gilbert", loss_burst=5))
    r = netpair.udp(4000, pps=8000)
    assert r["loss_pct"] == pytest.approx(10.0, abs=5.0)
    assert 2.5 <= r["mean_burst"] <= 10


def test_duplication_shows_in_ping(netpair, relay):
    relay.set("b_to_a", Impairment(duplicate_pct=50))
    p = netpair.ping(40, 0.01)
    assert p.received == 40 and p.duplicates >= 8
    assert relay.stats()["b_to_a"]["duplicated"] >= 8


def test_reorder_sends_some_packets_ahead(netpair, relay):
    relay.set("a_to_b", Impairment(delay_ms=10, reorder_pct=25))
    r = netpair.udp(1000, pps=2000)
    assert r["loss_pct"] == 0
    assert r["reordered"] > 100
    assert 150 <= relay.stats()["a_to_b"]["reordered"] <= 350


def test_rate_limits_tcp(netpair, relay):
    relay.set("a_to_b", Impairment(rate_bps=50_000_000))
    bps = netpair.iperf(seconds=3)
    assert bps == pytest.approx(50e6, rel=0.10)


def test_link_down_and_up(netpair, relay):
    relay.set_up(False)
    assert netpair.ping(20, 0.01).received == 0
    relay.set_up(True)
    assert netpair.ping(20, 0.01).received == 20


def test_queue_limit_drops_tail(netpair, relay):
    # 1 Mbit/s with a 10-packet queue cannot hold a 500 x 1000-byte burst
    relay.set("a_to_b", Impairment(rate_bps=1_000_000, limit=10))
    r = netpair.udp(200, pps=20000, size=1000, deadline=5)
    s = relay.stats()["a_to_b"]
    assert s["dropped_queue"] > 100
    assert r["unique"] == 200 - s["dropped_queue"]


def test_relay_uses_only_its_own_sockets(relay):
    sockets = [os.readlink(f"/proc/{relay.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{relay.pid}/fd")]
    # two packet sockets (one per interface) and the unix control socket, nothing else
    assert sum(s.startswith("socket:") for s in sockets) == 3


def test_sigterm_exits_cleanly(relay):
    relay.proc.send_signal(signal.SIGTERM)
    assert relay.proc.wait(timeout=3) == 0
    assert not relay.control_path.exists()
    with pytest.raises(ImpairError, match="exited"):
        relay.stats()


def test_exits_when_an_interface_disappears(netpair, relay):
    subprocess.run(["ip", "link", "del", netpair.if_b], check=True)
    assert relay.proc.wait(timeout=5) == 3


def test_start_fails_clearly_for_missing_interface(tmp_path):
    with pytest.raises(ImpairError, match="does not exist"):
        start_relay("tbimpnonexist0", "tbimpnonexist1", Impairment(), Impairment(),
                    tmp_path / "s", tmp_path / "l")


def test_zero_delay_throughput(netpair, relay):
    """Not a benchmark (see bench/impair_bench.py), just a floor that catches regressions."""
    assert netpair.iperf(seconds=2) > 300e6
