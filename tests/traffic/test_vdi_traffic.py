"""The remote-display emulation: its traffic model's rates, and a real TLS session on loopback (no root)."""
from __future__ import annotations

import asyncio
import json
import random
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.engine.pki import make_pki
from traffic import vdi_client, vdi_wire as w
from traffic.vdi_server import MODES, ScreenModel

from tests.traffic.loopback import start, stop


def simulate(mode: str, seed: int, seconds: float = 30.0, input_interval: float = 0.075) -> list[int]:
    """Bytes per 100 ms of one session: inputs every 2/3..4/3 of input_interval, pushes every tick."""
    rng = random.Random(seed)
    model = ScreenModel(MODES[mode], random.Random(seed + 1000))
    events, t = [], 0.0
    while (t := t + input_interval * rng.uniform(2 / 3, 4 / 3)) < seconds:
        events.append((t, "input"))
    tick = MODES[mode].tick_s
    events += [(n * tick, "push") for n in range(1, int(seconds / tick))]
    bins = [0] * int(seconds * 10)
    for t, what in sorted(events):
        size = model.input_answer(rng.choice([w.KEY, w.MOUSE])) if what == "input" else model.push(t)
        bins[min(len(bins) - 1, int(t * 10))] += size
    return bins


@pytest.mark.parametrize("seed", range(8))
def test_office_mode_is_bursty_around_125_kbit(seed):
    bins = simulate("office", seed, seconds=10.0)
    avg = sum(bins) * 8 / 10.0
    assert 100e3 <= avg <= 160e3, avg  # DOMAIN.md: about 100-150 kbit/s per session
    peak = max(bins) * 80
    assert 500e3 <= peak <= 1.2e6, peak  # 0.5-1 Mbit/s peaks (a burst tick plus an input answer at most)
    median = sorted(bins)[len(bins) // 2] * 80
    assert median < avg / 2, (median, avg)  # most intervals are quiet: the average comes from bursts


def test_office_mode_never_falls_far_behind_its_average_in_a_short_session():
    """The reference's desktops hold >= 100 kbit/s over 10 s: the model alone must not take that margin (it
    once left up to 24% unpaid when no burst happened to come near the end)."""
    averages = [sum(simulate("office", seed, seconds=10.0)) * 8 / 10.0 for seed in range(200)]
    assert min(averages) >= 112e3, min(averages)


@pytest.mark.parametrize("seed", range(4))
def test_video_mode_holds_2_mbit(seed):
    bins = simulate("video", seed, seconds=10.0)
    per_s = [sum(bins[i:i + 10]) * 8 for i in range(0, 100, 10)]
    assert all(1.8e6 <= x <= 2.2e6 for x in per_s), per_s


def test_input_answers_are_small_and_capped():
    m = ScreenModel(MODES["office"], random.Random(1))
    sizes = [m.input_answer(w.KEY) for _ in range(2000)] + [m.input_answer(w.MOUSE) for _ in range(2000)]
    assert 50 < sorted(sizes)[len(sizes) // 2] < 1000
    assert max(sizes) <= MODES["office"].peak_bps / 8 * MODES["office"].tick_s


def test_input_frame_is_tens_of_bytes_and_round_trips():
    data = w.input_frame(7, 123456789, w.KEY, 100, 200)
    assert 20 <= len(data) <= 64
    kind, n = w.HEADER.unpack_from(data)
    assert kind == w.INPUT and n == len(data) - w.HEADER.size
    assert w.INPUT_BODY.unpack_from(data, w.HEADER.size) == (7, 123456789, w.KEY, 100, 200)


def test_summarize_sums_sessions_per_interval():
    a, b = vdi_client.Session(1, None), vdi_client.Session(2, None)
    a.bins = {0: 100, 5: 100, 12: 50, 25: 999}  # slot 25 is past the 2 s measured: left out
    b.bins = {3: 10}
    a.latency_ms, b.latency_ms = [1.0, 2.0], [3.0]
    a.sent, b.sent = 2, 2
    out = vdi_client.summarize([a, b], duration=2.0, interval=1.0)
    assert out["throughput_bps"] == [210 * 8, 50 * 8]
    assert out["latency_ms"] == [1.0, 2.0, 3.0] and out["sent"] == 4 and out["received"] == 3
    assert out["peak_bps"] == 100 * 8 * 10


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A vdi_server on loopback with a certificate of a throwaway CA."""
    pki = make_pki(tmp_path_factory.mktemp("pki"), "unit", {"desk": "127.0.0.1"})
    proc, port = start("traffic.vdi_server", "--cert", str(pki / "desk.crt"), "--key", str(pki / "desk.key"))
    yield pki, port
    stop(proc)


def _client(pki: Path, port: int, *extra: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "traffic.vdi_client", "--host", "desk", "--addr", "127.0.0.1",
                        "--port", str(port), "--ca", str(pki / "ca.crt"), *extra],
                       capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout)


def test_session_over_tls_answers_every_input(server):
    pki, port = server
    out = _client(pki, port, "--duration", "2", "--sessions", "2")
    assert out["errors"] == [] and out["modes"] == ["office"]
    assert out["sent"] >= 2 * 15 and out["received"] == out["sent"]  # ~13 inputs/s per session
    assert len(out["latency_ms"]) == out["sent"] and max(out["latency_ms"]) < 500
    assert len(out["throughput_bps"]) == 2 and out["bytes_up"] < out["bytes_down"]


def test_wrong_ca_and_plaintext_are_refused(server, tmp_path):
    pki, port = server
    other = make_pki(tmp_path / "other", "other", {"desk": "127.0.0.1"})
    out = _client(other, port, "--duration", "1")
    assert out["sent"] == 0 and "CERTIFICATE_VERIFY_FAILED" in out["errors"][0]
    # a plaintext client speaking the protocol gets no welcome: the connection just ends
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(w.frame(w.HELLO, b'{"mode": "office"}'))
        assert s.recv(100) == b""
    # and the name is checked too: the certificate is for `desk`, not for `emr`
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="emr"))
