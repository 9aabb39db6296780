"""One direction of the relay, without sockets: when each frame may leave, and what is dropped.

The same semantics are measured with real packets in test_relay.py; here they
are pinned exactly (times, counters), with no root and no timing noise.
"""
from __future__ import annotations

import random
import statistics

import pytest

from testbed.impair import Impairment
from testbed.impair.lane import VNET_HDR, Lane, jitter_sampler, wire_len


def frame(payload: int = 1000, gso_type: int = 0, hdr_len: int = 0, gso_size: int = 0) -> bytes:
    return VNET_HDR.pack(0, gso_type, hdr_len, gso_size, 0, 0) + b"\0" * payload


def lane(**imp: object) -> Lane:
    return Lane("a_to_b", out=None, imp=Impairment(**imp))  # type: ignore[arg-type]  # never sends by itself


def test_noop_is_the_fast_path():
    assert lane().fast and not lane(delay_ms=0.001).fast


def test_constant_delay_keeps_order_and_a_live_decrease_does_not_overtake():
    ln = lane(delay_ms=10)
    assert ln.schedule(frame(), 0.0) is False
    ln.set(Impairment(delay_ms=1))
    ln.schedule(frame(), 0.001)
    assert [t for t, _ in ln.fifo] == [pytest.approx(0.010), pytest.approx(0.010)]
    assert ln.next_departure() == pytest.approx(0.010) and ln.queued == 2


def test_rate_serialises_frames_back_to_back():
    ln = lane(rate_bps=8_000_000)  # 1000 bytes = 1 ms
    for _ in range(3):
        ln.schedule(frame(1000), 0.0)
    assert [t for t, _ in ln.fifo] == [pytest.approx(x) for x in (0.001, 0.002, 0.003)]


def test_jitter_keeps_arrival_order():
    random.seed(1)
    ln = lane(delay_ms=10, jitter_ms=5, jitter_dist="uniform")
    for i in range(200):
        ln.schedule(frame(i + 1), i * 0.0001)  # 0.1 ms apart: jitter samples 10 ms wide would cross
    times = [t for t, _ in ln.fifo]
    assert [len(f) for _, f in ln.fifo] == [VNET_HDR.size + i + 1 for i in range(200)]  # arrival order
    assert times == sorted(times) and ln.queued == 200
    assert min(times) >= 0.005 and max(times) <= 0.0199 + 0.015  # within the band (+ the wait behind)
    # a frame is held back only behind the one before it, never later than that
    held = [t for t, prev in zip(times[1:], times) if t == prev]
    assert held and len(held) < 200
    assert ln.next_departure() == times[0]


def test_jitter_at_a_low_rate_keeps_its_spread():
    random.seed(4)
    ln = lane(delay_ms=20, jitter_ms=4, jitter_dist="normal")
    for i in range(2000):
        ln.schedule(frame(), i * 0.05)  # 50 ms apart: order costs (almost) nothing
    delays = [t - i * 0.05 for i, (t, _) in enumerate(ln.fifo)]
    assert statistics.median(delays) == pytest.approx(0.020, abs=0.0005)
    assert statistics.pstdev(delays) == pytest.approx(0.004, rel=0.1)


def test_queue_limit_drops_new_frames():
    ln = lane(delay_ms=5, limit=3)
    for _ in range(5):
        ln.schedule(frame(), 0.0)
    assert ln.queued == 3 and ln.counters["dropped_queue"] == 2


def test_reorder_sends_every_gap_th_frame_ahead():
    random.seed(2)
    ln = lane(delay_ms=5, reorder_pct=100, reorder_gap=3)
    sent_now = [ln.schedule(frame(), 0.0) for _ in range(9)]
    assert sent_now == [False, False, True] * 3 and ln.counters["reordered"] == 3
    assert lane(reorder_pct=100).reorder == 0  # needs a delay to mean anything, as in netem


def test_down_flush_counts_what_was_queued():
    ln = lane(delay_ms=5, jitter_ms=1)
    for _ in range(4):
        ln.schedule(frame(), 0.0)
    ln.flush()
    assert ln.queued == 0 and not ln.fifo and ln.counters["dropped_down"] == 4
    assert ln.next_departure() is None


def test_gilbert_loss_comes_in_bursts_of_the_mean_length():
    random.seed(3)
    ln = lane(loss_pct=10, loss_model="gilbert", loss_burst=5)
    lost = [ln.lost() for _ in range(200_000)]
    bursts, run = [], 0
    for x in lost:
        if x:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    assert sum(lost) / len(lost) == pytest.approx(0.10, abs=0.01)
    assert statistics.fmean(bursts) == pytest.approx(5.0, rel=0.1)


def test_gso_frame_counts_every_segment_header_on_the_wire():
    assert wire_len(frame(1000)) == 1000
    # 54-byte headers + 2900 bytes of payload in 1448-byte segments: 3 segments, 3 headers
    assert wire_len(frame(54 + 2900, gso_type=1, hdr_len=54, gso_size=1448)) == 54 + 2900 + 2 * 54


@pytest.mark.parametrize("dist", ["normal", "pareto", "paretonormal"])
def test_jitter_samples_are_centred_and_pareto_leans_late(dist: str):
    random.seed(4)
    sample = jitter_sampler(dist)
    xs = [sample() for _ in range(100_000)]
    assert statistics.fmean(xs) == pytest.approx(0.0, abs=0.05)
    if dist == "normal":
        assert statistics.pstdev(xs) == pytest.approx(1.0, rel=0.05)
    else:  # heavy right tail (a sample stdev converges too slowly to pin): late outliers, no early ones
        assert max(xs) > 5 * -min(xs)


def test_uniform_jitter_is_a_band():
    random.seed(5)
    xs = [jitter_sampler("uniform")() for _ in range(10_000)]
    assert -1.0 <= min(xs) and max(xs) < 1.0
    with pytest.raises(ValueError):
        jitter_sampler("lognormal")


def test_departure_counts_from_the_kernel_arrival_stamp():
    """A frame read late (relay descheduled, or busy with a batch) still leaves `delay` after it arrived."""
    import socket
    import struct

    from testbed.impair.forward import arrival
    from traffic.rxstamp import SO_TIMESTAMPNS

    offset = 1_700_000_000.0  # realtime - monotonic
    stamp = [(socket.SOL_SOCKET, SO_TIMESTAMPNS, struct.pack("qq", 1_700_000_100, 250_000_000))]
    assert arrival(stamp, offset, now=100.9) == pytest.approx(100.25)  # read 650 ms after it came in
    assert arrival(stamp, offset, now=100.1) == 100.1  # a stamp "from the future" (clock step): now
    assert arrival([], offset, now=5.0) == 5.0  # no stamp: now
    lane = Lane("a_to_b", None, Impairment(delay_ms=10))  # type: ignore[arg-type]
    lane.schedule(b"x", arrival(stamp, offset, now=100.9))
    assert lane.next_departure() == pytest.approx(100.26)
