"""vdi, video and iperf workload types without a network: parameters, placement, parsing of agent output."""
from __future__ import annotations

import pytest

from testbed.errors import TopologyError
from testbed.runner import check_workloads
from testbed.topology.loader import parse_text
from testbed.workloads import agents, iperf, slo, video, vdi
from testbed.workloads.base import LATENCY_MS, THROUGHPUT_BPS
from testbed.workloads.targets import assign, service_port

TOPO = """\
name: streams
nodes:
  - {name: sw, kind: switch}
  - {name: a, kind: host}
  - {name: b, kind: host}
  - {name: c, kind: host}
  - {name: d1, kind: vdi, services: [vdi, iperf]}
  - {name: d2, kind: vdi, services: [vdi, {name: iperf, port: 5301}]}
links:
  - {endpoints: [a, sw]}
  - {endpoints: [b, sw]}
  - {endpoints: [c, sw]}
  - {endpoints: [d1, sw]}
  - {endpoints: [d2, sw]}
workloads:
  - {name: desk, type: vdi, from: [a, b, c], to: vdi, mode: video, sessions: 2, input_interval: 60ms}
  - {name: consult, type: video, from: [a], to: b, bitrate: 1Mbit, fps: 25}
  - {name: bulk, type: iperf, from: [a], to: d2, proto: udp, bitrate: 5Mbit, parallel: 2}
"""


def test_params_are_validated_where_they_are_written():
    topo = parse_text(TOPO, "streams.yaml")
    check_workloads(topo)
    desk, consult, bulk = topo.workloads
    p = vdi.TYPE.Params.model_validate(desk.params)
    assert (p.mode, p.sessions, p.input_interval) == ("video", 2, 60.0)
    assert video.TYPE.Params.model_validate(consult.params).bitrate == 1_000_000
    assert iperf.TYPE.Params.model_validate(bulk.params).bitrate == 5_000_000
    with pytest.raises(TopologyError, match=r"streams.yaml:16 workloads\[0\].mode"):
        check_workloads(parse_text(TOPO.replace("mode: video", "mode: cinema"), "streams.yaml"))
    with pytest.raises(TopologyError, match=r"workloads\[2\].protocol: unknown key .*did you mean 'proto'"):
        check_workloads(parse_text(TOPO.replace("proto: udp", "protocol: udp"), "streams.yaml"))


def test_a_service_target_spreads_sources_over_the_pool():
    topo = parse_text(TOPO, "streams.yaml")
    assert assign(topo, ["a", "b", "c"], "vdi") == [("a", "d1"), ("b", "d2"), ("c", "d1")]
    assert assign(topo, ["a", "c"], "b") == [("a", "b"), ("c", "b")]
    assert assign(topo, ["b"], "b") == []  # never to itself
    assert service_port(topo, "d2", "iperf") == 5301 and service_port(topo, "a", "vdi") is None


def test_last_json_takes_the_document_after_any_chatter():
    assert agents.last_json('{"a": 1}') == {"a": 1}
    assert agents.last_json('warning: x\n{"a": 2}\n') == {"a": 2}
    assert agents.last_json("Traceback...\nBoom") is None
    assert agents.last_json("") is None


def test_vdi_agent_output_to_samples():
    job = agents.Job("a", "d1", [], result={"latency_ms": [3.0, 4.0], "throughput_bps": [1.2e5, 1.3e5],
                                            "interval_s": 1.0, "sent": 3, "received": 2, "errors": [],
                                            "peak_bps": 9e5, "sessions": 1})
    m = vdi.to_measurement("desk", "vdi", job)
    assert m.samples[LATENCY_MS] == [3.0, 4.0] and m.samples[THROUGHPUT_BPS] == [1.2e5, 1.3e5]
    assert m.loss_pct == pytest.approx(100 / 3) and m.info["interval_s"] == 1.0 and m.info["peak_bps"] == 9e5
    failed = vdi.to_measurement("desk", "vdi", agents.Job("a", "d1", [], error="no result within 40s"))
    [v] = slo.verdicts(failed, parse_text(TOPO, "s.yaml").workloads[0].slo)
    assert v.status == "fail" and "no result" in v.detail


def test_video_agent_output_to_one_way_samples():
    job = agents.Job("a", "b", [], result={"sent": 10, "bitrate": 1e6, "receiver": {
        "received": 9, "delays_ms": [10.1] * 9, "throughput_bps": [1e6], "interval_s": 1.0, "jitter_ms": 0.2,
        "reordered": 1, "duplicates": 0, "lost": 1}})
    m = video.to_measurement("consult", "video", job)
    assert m.info["one_way"] is True and m.info["jitter_rfc3550_ms"] == 0.2
    assert m.loss_pct == pytest.approx(10.0) and slo.summary(m)["latency_p50"] == 10.1
    broken = video.to_measurement("consult", "video", agents.Job("a", "b", [], result={
        "sent": 0, "error": "no answer from a receiver at 10.0.0.2:5004"}))
    assert broken.errors == ["no answer from a receiver at 10.0.0.2:5004"]


# What iperf3 3.12 prints as the server's report (--get-server-output with a text-mode server).
SERVER_TCP_P2 = """\
[ ID] Interval           Transfer     Bitrate
[  5]   0.00-1.00   sec  5.62 MBytes  47.1 Mbits/sec
[  8]   0.00-1.00   sec   512 KBytes  4.19 Mbits/sec
[SUM]   0.00-1.00   sec  6.12 MBytes  51.3 Mbits/sec
- - - - - - - - - - - - - - - - - - - - - - - - -
[  5]   1.00-2.00   sec  2.75 MBytes  23.1 Mbits/sec
[  8]   1.00-2.00   sec  2.88 MBytes  24.1 Mbits/sec
[SUM]   1.00-2.00   sec  5.62 MBytes  47.2 Mbits/sec
- - - - - - - - - - - - - - - - - - - - - - - - -
[  5]   2.00-2.04   sec   128 KBytes  26.2 Mbits/sec
[  8]   2.00-2.04   sec   128 KBytes  26.2 Mbits/sec
[SUM]   2.00-2.04   sec   256 KBytes  52.4 Mbits/sec
- - - - - - - - - - - - - - - - - - - - - - - - -
[ ID] Interval           Transfer     Bitrate
[  5]   0.00-2.04   sec  8.50 MBytes  35.0 Mbits/sec                  receiver
[  8]   0.00-2.04   sec  3.50 MBytes  14.4 Mbits/sec                  receiver
[SUM]   0.00-2.04   sec  12.0 MBytes  49.4 Mbits/sec                  receiver
"""
SERVER_UDP = """\
[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams
[  5]   0.00-1.00   sec   608 KBytes  4.98 Mbits/sec  0.031 ms  1/20 (5%)
[  5]   1.00-2.00   sec   640 KBytes  5.24 Mbits/sec  0.028 ms  0/20 (0%)
- - - - - - - - - - - - - - - - - - - - - - - - -
[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams
[  5]   0.00-2.00   sec  1.22 MBytes  5.11 Mbits/sec  0.028 ms  1/40 (2.5%)  receiver
"""


def test_server_report_gives_the_received_series():
    assert iperf.server_intervals(SERVER_TCP_P2, 1.0) == [51.3e6, 47.2e6]  # [SUM] lines, no sliver, no summary
    assert iperf.server_intervals(SERVER_UDP, 1.0) == [4.98e6, 5.24e6]
    assert iperf.server_intervals("", 1.0) == []


def _interval(bps: float, seconds: float = 1.0) -> dict:
    return {"sum": {"seconds": seconds, "bits_per_second": bps, "omitted": False}}


def test_tcp_run_summary():
    doc = {"intervals": [_interval(60e6), _interval(48e6), _interval(1e6, 0.04)],
           "end": {"sum_sent": {"retransmits": 12, "bits_per_second": 50e6},
                   "sum_received": {"bits_per_second": 49.4e6}},
           "server_output_text": SERVER_TCP_P2}
    s = iperf.summarize(doc, "tcp", False, 1.0)
    assert s["throughput_bps"] == [51.3e6, 47.2e6] and s["side"] == "receiver"
    assert (s["sent"], s["received"], s["retransmits"], s["mean_bps"]) == (1, 1, 12, 49.4e6)
    # reversed, the client is the receiver: its own intervals (slivers left out)
    assert iperf.summarize(doc, "tcp", True, 1.0)["throughput_bps"] == [60e6, 48e6]
    # no server report: the client's (sender side) series
    s = iperf.summarize({**doc, "server_output_text": ""}, "tcp", False, 1.0)
    assert s["throughput_bps"] == [60e6, 48e6] and s["side"] == "sender"


def test_udp_run_summary_and_failures():
    doc = {"intervals": [_interval(5e6), _interval(5e6)], "server_output_text": SERVER_UDP,
           "end": {"sum": {"packets": 40, "lost_packets": 1, "jitter_ms": 0.028, "lost_percent": 2.5,
                           "bits_per_second": 5.1e6}}}
    s = iperf.summarize(doc, "udp", False, 1.0)
    assert (s["sent"], s["received"], s["jitter_ms"]) == (40, 39, 0.028)
    m = iperf.TYPE.measurement("bulk", agents.Job("a", "d2", [], result=doc),
                               iperf.IperfParams(proto="udp", bitrate="5Mbit"))
    assert m.loss_pct == pytest.approx(2.5) and m.samples[THROUGHPUT_BPS] == [4.98e6, 5.24e6]
    busy = iperf.TYPE.measurement("bulk", agents.Job("a", "d2", [], result={
        "start": {}, "intervals": [], "end": {}, "error": "the server is busy running a test. try again later"}),
        iperf.IperfParams())
    assert busy.errors == ["iperf3: the server is busy running a test. try again later"] and busy.loss_pct == 100


def test_iperf_argv():
    a = iperf.TYPE.argv("10.0.0.9", 5201, 5, iperf.IperfParams(proto="udp", parallel=2, reverse=True), 3_000_000)
    assert a[:5] == ["iperf3", "-c", "10.0.0.9", "-p", "5201"]
    assert {"-J", "-u", "-R", "--get-server-output"} <= set(a) and a[a.index("-b") + 1] == "3000000"
    assert a[a.index("-t") + 1] == "5" and a[a.index("-P") + 1] == "2"
    assert "-b" not in iperf.TYPE.argv("10.0.0.9", 5201, 5, iperf.IperfParams(), None)
