"""The RTP-like media stream: receiver statistics from crafted packets, the report's chunked
transfer, and one real stream on loopback (no root)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from traffic import media


def _stream(arrivals: list[tuple[int, float, float]]) -> media.Stream:
    """arrivals: (seq, send ms, receive ms) in arrival order."""
    st = media.Stream(1, "10.0.0.1:4000")
    for seq, s_ms, r_ms in arrivals:
        st.add(seq, int(s_ms * 1e6), int(r_ms * 1e6), 1000)
    return st


def test_one_way_delay_loss_duplicates_reordering():
    st = _stream([(0, 0, 10), (1, 20, 30), (3, 60, 70), (2, 40, 71), (3, 60, 72), (5, 100, 111)])
    st.sent = 7  # seqs 4 and 6 never arrived (6: the sender said it sent 7)
    s = st.summary()
    assert s["received"] == 5 and s["duplicates"] == 1 and s["reordered"] == 1
    assert s["lost"] == 2 and s["expected"] == 7
    assert st.delays_ms == [10, 10, 10, 31, 11]
    assert s["delay_ms"]["min"] == 10 and s["delay_ms"]["max"] == 31


def test_interarrival_jitter_is_rfc3550():
    transits = [10, 12, 10, 15, 10]
    st = _stream([(i, i * 20, i * 20 + t) for i, t in enumerate(transits)])
    j = 0.0
    for a, b in zip(transits, transits[1:]):
        j += (abs(b - a) - j) / 16  # RFC 3550 A.8
    assert st.jitter_ms == pytest.approx(j)


def test_throughput_per_second_drops_the_partial_last_second():
    st = media.Stream(1, "p")
    for i in range(250):  # 100 packets of 1000 B per second for 2.5 s
        st.add(i, i * 10_000_000, i * 10_000_000 + 5_000_000, 1000)
    st.finish()
    rep = json.loads(st.report)
    assert rep["throughput_bps"] == [800_000, 800_000]
    assert len(rep["delays_ms"]) == 250 and rep["delay_ms"]["p50"] == 5.0
    assert st.summary()["delay_ms"]["p50"] == 5.0  # the summary survives dropping the raw samples


def test_frame_sizes_average_the_bitrate_with_key_frames():
    sizes = media.frame_sizes(2e6, 30, 30, 300)
    assert sum(sizes) * 8 / 10 == pytest.approx(2e6, rel=0.001)
    assert sizes[0] == sizes[30] and sizes[0] == pytest.approx(3 * sizes[1], rel=0.01)


class FakeSock:
    def __init__(self):
        self.sent: list[tuple[bytes, tuple]] = []

    def sendto(self, data, peer):
        self.sent.append((data, peer))


def test_report_goes_back_in_chunks_and_missing_ones_can_be_asked_again():
    sock = FakeSock()
    rx = media.Receiver(sock, max_streams=4, idle_s=10, out=open("/dev/null", "w"))
    peer = ("10.0.0.1", 4000)
    rx.handle(media.packet(media.HELLO, 9, 0), peer, 0)
    assert media.parse(sock.sent[-1][0])[0] == media.HELLO_ACK
    for seq in range(3000):
        rx.handle(media.packet(media.MEDIA, 9, seq, b"x" * 100, ts_ns=seq * 1_000_000), peer,
                  seq * 1_000_000 + 2_345_678)
    sock.sent.clear()
    rx.handle(media.packet(media.QUERY, 9, 0, media.QUERY_BODY.pack(3000, 0, 256)), peer, 0)
    chunks = {}
    for data, _peer in sock.sent:
        kind, sid, idx, _ts, body = media.parse(data)
        assert kind == media.REPORT and sid == 9 and len(data) <= 1400
        total = media.CHUNK_HEAD.unpack_from(body)[0]
        chunks[idx] = body[media.CHUNK_HEAD.size:]
    assert total > 1 and len(chunks) == total
    del chunks[1]  # lost on the way: asked again
    sock.sent.clear()
    rx.handle(media.packet(media.QUERY, 9, 0, media.QUERY_BODY.pack(3000, 1, 1)), peer, 0)
    [(data, _)] = sock.sent
    chunks[1] = media.parse(data)[4][media.CHUNK_HEAD.size:]
    rep = json.loads(b"".join(chunks[i] for i in range(total)))
    assert rep["received"] == 3000 and rep["lost"] == 0 and rep["delays_ms"][:2] == [2.346, 2.346]
    # an unknown stream gets an error, not silence
    sock.sent.clear()
    rx.handle(media.packet(media.QUERY, 77, 0, media.QUERY_BODY.pack(1, 0, 1)), peer, 0)
    assert b"unknown stream" in sock.sent[0][0]


def test_stream_on_loopback():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rx = subprocess.Popen([sys.executable, "-m", "traffic.media", "receive", "--bind", "127.0.0.1", "--port",
                           str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(rx.stdout.readline())["event"] == "listening"
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "traffic.media", "send", "--to", "127.0.0.1", "--port", str(port),
                            "--bitrate", "1e6", "--fps", "25", "--duration", "2.2"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        rep = out["receiver"]
        assert rep["received"] == out["sent"] and rep["lost"] == 0 and len(rep["delays_ms"]) == out["sent"]
        assert 0 <= rep["delay_ms"]["p50"] < 5  # loopback: micro- to milliseconds
        assert rep["throughput_bps"] and all(0.8e6 < x < 1.2e6 for x in rep["throughput_bps"])
        assert time.monotonic() - t0 < 10
    finally:
        rx.terminate()
        rx.wait(timeout=10)
    assert '"event":"stream-end"' in rx.stdout.read()
