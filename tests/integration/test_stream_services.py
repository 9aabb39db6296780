"""Cloud desktop (vdi), video consultation (video) and iperf: the real servers in a small testbed,
real clients against them, and each workload type run and scored.

One network for the module (building one costs ~10-20 s on two shared CPUs):
  tablet, clinic, expert, desk and bulk on one switch, one slice granting vdi,
  video and iperf; desk's link adds 5 ms each way (a desktop host behind a
  remote data centre), expert's 10 ms each way (the tertiary hospital seen
  from the clinic), bulk's is capped at 50 Mbit/s.
"""
from __future__ import annotations

import os

import pytest

from testbed.engine.pki import make_ca
from testbed.workloads import slo
from testbed.workloads.base import LATENCY_MS, THROUGHPUT_BPS

from tests.helpers import built, run_workload

TOPO = """
name: streams
nodes:
  - {name: sw, kind: switch}
  - {name: tablet, kind: host}
  - {name: clinic, kind: host, services: [video]}
  - {name: expert, kind: host, services: [video]}
  - {name: desk, kind: vdi, services: [vdi]}
  - {name: bulk, kind: server, services: [iperf, {name: iperf-udp, port: 5201, proto: udp}]}
links:
  - {endpoints: [tablet, sw]}
  - {endpoints: [clinic, sw]}
  - {endpoints: [expert, sw], delay: 10ms}
  - {endpoints: [desk, sw], delay: 5ms}
  - {endpoints: [bulk, sw], bw: 50Mbit}
slices:
  - {name: consult, sst: 1, sd: "000001", fiveqi: 2, members: [tablet, clinic, expert],
     services: [vdi, video, iperf, iperf-udp]}
workloads:
  - {name: desk-office, type: vdi, from: [tablet], to: desk, slice: consult, duration: 10s, mode: office,
     slo: {latency_p95: 100ms, jitter: 30ms, throughput_min: 100kbit}}
  - {name: desk-video, type: vdi, from: [tablet], to: vdi, slice: consult, duration: 6s, mode: video, sessions: 2,
     slo: {latency_p95: 150ms, throughput_min: 3.6Mbit}}
  - {name: consult, type: video, from: [clinic], to: expert, slice: consult, duration: 8s, bitrate: 2Mbit, fps: 30,
     slo: {latency_p95: 20ms, jitter: 5ms, loss_max: 1%, throughput_min: 1.8Mbit}}
  - {name: bulk-tcp, type: iperf, from: [tablet], to: bulk, slice: consult, duration: 5s,
     slo: {throughput_min: 30Mbit}}
  - {name: bulk-udp, type: iperf, from: [clinic], to: iperf, slice: consult, duration: 3s, proto: udp,
     bitrate: 10Mbit, slo: {loss_max: 5%, throughput_min: 9Mbit}}
"""


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    yield from built(TOPO, "streams.yaml", tmp_path_factory)


def _sh(tb, node: str, script: str, timeout: float = 30):
    return tb.node(node).run(["sh", "-c", script], timeout=timeout)


def test_vdi_server_speaks_tls_with_the_run_ca_only(tb, tmp_path):
    ca = tb.manifest.dir / "pki" / "ca.crt"
    make_ca(tmp_path, "other")  # another CA: the desk's certificate does not chain to it
    other_ca = tmp_path / "ca.crt"
    ok = _sh(tb, "tablet", f"echo | openssl s_client -connect desk:4172 -servername desk -verify_hostname desk "
                           f"-CAfile {ca} -verify_return_error")
    assert ok.returncode == 0 and "Verify return code: 0 (ok)" in ok.stdout, ok.stdout + ok.stderr
    assert "CN = desk" in ok.stdout or "CN=desk" in ok.stdout
    # against another CA, verification fails
    bad = _sh(tb, "tablet", f"echo | openssl s_client -connect desk:4172 -servername desk -verify_return_error "
                            f"-CAfile {other_ca}")
    assert bad.returncode != 0 and "unable to get local issuer certificate" in (bad.stdout + bad.stderr), bad
    # plaintext gets nothing: curl sees the connection end without a reply
    plain = _sh(tb, "tablet", "curl -sS -m 5 http://desk:4172/")
    assert plain.returncode in (52, 56), (plain.returncode, plain.stderr)
    log = (tb.manifest.dir / "daemons" / "desk-vdi.log").read_text()
    assert '"event": "listening"' in log and "BEGIN" not in log  # no key material in the log


def test_vdi_office_session(tb):
    _, [m], verdicts = run_workload(tb, "desk-office", print)
    assert not m.errors, m.errors
    avg = slo.mean(m.samples[THROUGHPUT_BPS])
    lat = m.samples[LATENCY_MS]
    print(f"vdi office: {avg / 1e3:.0f} kbit/s avg, peak {m.info['peak_bps'] / 1e3:.0f} kbit/s per 100 ms, "
          f"input->update p50 {slo.percentile(lat, 50):.2f} ms p95 {slo.percentile(lat, 95):.2f} ms, "
          f"{m.received}/{m.sent} inputs")
    assert 100e3 <= avg <= 200e3  # DOMAIN.md: ~100-150 kbit/s per office session
    assert 400e3 <= m.info["peak_bps"] <= 1.5e6  # bursts up to ~1 Mbit/s (a 100 ms window may catch two)
    assert m.sent >= 100 and m.received == m.sent  # an input every 50-100 ms for 10 s, every one answered
    assert 10.0 <= slo.percentile(lat, 50) <= 30.0  # two crossings of desk's 5 ms link, plus the relay
    assert all(v.status == "pass" for v in verdicts), [v.detail for v in verdicts]


def test_vdi_video_sessions(tb):
    _, [m], verdicts = run_workload(tb, "desk-video", print)  # `to: vdi`: the broker puts the tablet on desk
    assert m.dst == "desk" and not m.errors, m.errors
    avg = slo.mean(m.samples[THROUGHPUT_BPS])
    print(f"vdi video x2: {avg / 1e6:.2f} Mbit/s avg, input->update p95 "
          f"{slo.percentile(m.samples[LATENCY_MS], 95):.2f} ms")
    assert 3.6e6 <= avg <= 4.4e6  # two sessions of ~2 Mbit/s
    assert all(v.status == "pass" for v in verdicts), [v.detail for v in verdicts]


def test_video_consultation_one_way_delay(tb):
    _, [m], verdicts = run_workload(tb, "consult", print)
    assert not m.errors, m.errors
    lat = m.samples[LATENCY_MS]
    print(f"video 2 Mbit/s clinic -> expert: one-way p50 {slo.percentile(lat, 50):.2f} ms "
          f"p95 {slo.percentile(lat, 95):.2f} ms, jitter {slo.jitter(lat):.3f} ms "
          f"(RFC 3550 {m.info['jitter_rfc3550_ms']} ms), loss {m.loss_pct:.2f}% ({m.received}/{m.sent}), "
          f"{slo.mean(m.samples[THROUGHPUT_BPS]) / 1e6:.2f} Mbit/s received")
    assert m.info["one_way"] is True
    assert 9.5 <= slo.percentile(lat, 50) <= 13.0  # expert's link: 10 ms each way, so ~10 ms one way
    assert m.loss_pct <= 1.0 and len(m.samples[THROUGHPUT_BPS]) >= 6
    assert all(v.status == "pass" for v in verdicts), [v.detail for v in verdicts]
    log = (tb.manifest.dir / "daemons" / "expert-video.log").read_text()
    assert '"event":"stream-end"' in log


def test_video_port_is_the_slice_grant(tb):
    """A node outside the slice cannot stream: the video service is gated like any other."""
    out = _sh(tb, "bulk", f"{os.sys.executable} -m traffic.media send --to {tb.node('expert').ip} "
                          "--duration 1 --connect-timeout 2")
    assert out.returncode != 0 and "no answer from a receiver" in out.stdout


def test_iperf_tcp_through_a_50_mbit_link(tb):
    _, [m], verdicts = run_workload(tb, "bulk-tcp", print)
    assert not m.errors, m.errors
    tput = m.samples[THROUGHPUT_BPS]
    print(f"iperf TCP via 50 Mbit/s: {[round(x / 1e6, 1) for x in tput]} Mbit/s "
          f"(mean {slo.mean(tput) / 1e6:.1f}), retransmits {m.info.get('retransmits')}, side {m.info['side']}")
    assert len(tput) >= 4 and max(tput) <= 52e6  # the link's cap holds, per second
    # ~47.8 Mbit/s on a quiet host; a two-CPU host shared with other runs slows the userspace datapath
    assert sorted(tput)[len(tput) // 2] >= 30e6
    assert all(v.status == "pass" for v in verdicts), [v.detail for v in verdicts]


def test_iperf_udp(tb):
    _, [m], verdicts = run_workload(tb, "bulk-udp", print)
    assert not m.errors, m.errors
    print(f"iperf UDP 10 Mbit/s: {[round(x / 1e6, 2) for x in m.samples[THROUGHPUT_BPS]]} Mbit/s, "
          f"jitter {m.info['jitter_ms']:.3f} ms, loss {m.loss_pct:.2f}% of {m.sent}")
    assert m.sent > 2000 and m.info["jitter_ms"] is not None
    assert all(v.status == "pass" for v in verdicts), [v.detail for v in verdicts]
