"""iperf: bulk TCP or UDP from each source to the target's iperf3 server, the tool network engineers trust.

The catalogue starts `iperf3 -s` on every node offering `iperf`; each source
runs the real `iperf3` client with `-J` (and `--get-server-output`, so the
receiving side's own per-second report comes back too). Samples:
THROUGHPUT_BPS per interval as the receiver counted it (the server's lines;
the client's own with `reverse`), retransmits (TCP), jitter and lost datagrams
(UDP, as sent / received). An iperf3 server runs one test at a time: sources
aimed at the same server take turns (each for the entry's duration, so the
whole entry lasts that many times longer), while different servers run at
once; a server busy with another workload is retried until the deadline.
UDP needs the slice to grant UDP on the iperf port too (the catalogue's
`iperf` is TCP): give the node a service {name: iperf-udp, port: 5201,
proto: udp} and let the slice allow it.
"""
from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from testbed.topology.model import Duration, Rate
from testbed.workloads import agents
from testbed.workloads.base import THROUGHPUT_BPS, Measurement
from testbed.workloads.targets import assign

SERVICE = "iperf"
MARGIN_S = 20.0
BUSY_RETRY_S = 1.0

_RATE_UNIT = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_LINE = re.compile(r"^\[\s*(SUM|\d+)\]\s+([\d.]+)-([\d.]+)\s+sec\s+[\d.]+\s+\w?Bytes\s+([\d.]+)\s+([KMGT]?)bits/sec(.*)$")


class IperfParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proto: Literal["tcp", "udp"] = Field("tcp", description="TCP (as fast as the path allows) or UDP (at bitrate).")
    parallel: int = Field(1, ge=1, le=16, description="Parallel streams (iperf3 -P).")
    bitrate: Rate | None = Field(None, description="Send rate per stream: UDP (default: the entry's rate, "
                                 "else 1Mbit); for TCP a cap (default none).")
    reverse: bool = Field(False, description="The server sends, the source receives (iperf3 -R).")
    interval: Duration = Field(1000.0, ge=100, le=60000, description="Throughput sample interval.")


def server_intervals(text: str, interval_s: float) -> list[float]:
    """Per-interval bit rates in iperf3's (server's) text report: [SUM] lines when there are several
    streams, else the stream's own; summary lines (sender/receiver) and slivers left out."""
    rows: dict[str, list[float]] = defaultdict(list)
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m or re.search(r"\b(sender|receiver)\s*$", m.group(6)):
            continue
        start, end = float(m.group(2)), float(m.group(3))
        if end - start < 0.5 * interval_s:
            continue
        rows["sum" if m.group(1) == "SUM" else "stream"].append(float(m.group(4)) * _RATE_UNIT[m.group(5)])
    return rows["sum"] or rows["stream"]


def summarize(doc: dict[str, Any], proto: str, reverse: bool, interval_s: float) -> dict[str, Any]:
    """What one iperf3 -J run measured: throughput series (receiver side), counts, and details."""
    end = doc.get("end", {})
    client = [i["sum"]["bits_per_second"] for i in doc.get("intervals", [])
              if i.get("sum", {}).get("seconds", 0) >= 0.5 * interval_s and not i["sum"].get("omitted")]
    server = [] if reverse else server_intervals(doc.get("server_output_text", ""), interval_s)
    out: dict[str, Any] = {"throughput_bps": server or client,
                           "side": "receiver" if (server or reverse) else "sender"}
    if proto == "udp":
        s = end.get("sum", {})
        packets, lost = int(s.get("packets", 0)), int(s.get("lost_packets", 0))
        out |= {"sent": packets, "received": max(0, packets - lost), "jitter_ms": s.get("jitter_ms"),
                "lost_percent": s.get("lost_percent")}
    else:
        ok = "error" not in doc and bool(end)
        out |= {"sent": 1, "received": int(ok), "retransmits": end.get("sum_sent", {}).get("retransmits")}
    out["mean_bps"] = (end.get("sum_received") or end.get("sum") or {}).get("bits_per_second")
    return out


class Iperf:
    name = "iperf"
    summary = "iperf3 TCP/UDP bulk transfer: throughput per interval, retransmits, UDP jitter and loss"
    Params = IperfParams
    agent = None  # the real iperf3 client

    def argv(self, ip: str, port: int, seconds: int, params: IperfParams, rate: int | None) -> list[str]:
        a = ["iperf3", "-c", ip, "-p", str(port), "-t", str(seconds), "-i", f"{params.interval / 1000:g}",
             "-P", str(params.parallel), "-J", "--get-server-output", "--connect-timeout", "5000"]
        if params.proto == "udp":
            a += ["-u", "-b", str(rate or 1_000_000)]
        elif rate:
            a += ["-b", str(rate)]
        if params.reverse:
            a.append("-R")
        return a

    def run(self, tb, w, params: IperfParams, emit) -> list[Measurement]:
        seconds = max(1, math.ceil(w.duration / 1000))
        rate = params.bitrate or w.rate

        def job(src: str, dst: str, port: int) -> agents.Job:
            return agents.Job(src, dst, self.argv(tb.node(dst).ip, port, seconds, params, rate))

        jobs, out = agents.plan(w, self.name, assign(tb.topo, w.src, w.dst), job, tb.topo, SERVICE)
        turns: dict[str, list[agents.Job]] = defaultdict(list)  # target -> its sources, one at a time
        for j in jobs:
            turns[j.dst].append(j)
        rounds = max((len(v) for v in turns.values()), default=0)
        emit(f"{w.name}: iperf3 {params.proto} x{params.parallel}, {seconds}s, {rounds} round(s)")
        deadline = time.monotonic() + rounds * (seconds + MARGIN_S)
        for r in range(rounds):
            pending = [jobs[r] for jobs in turns.values() if r < len(jobs)]
            while pending:
                done = agents.run_all(tb, pending, seconds + MARGIN_S)
                busy = [j for j in done if j.result and "busy" in str(j.result.get("error", ""))]
                pending = [] if time.monotonic() + seconds > deadline else busy
                if pending:
                    time.sleep(BUSY_RETRY_S)
                for j in done:
                    if not any(j is p for p in pending):
                        out.append(self.measurement(w.name, j, params))
        return out

    def measurement(self, workload: str, job: agents.Job, params: IperfParams) -> Measurement:
        doc = job.result or {}
        s = summarize(doc, params.proto, params.reverse, params.interval / 1000)
        m = Measurement(workload, self.name, job.src, job.dst, sent=s["sent"], received=s["received"],
                        seconds=job.seconds)
        m.samples[THROUGHPUT_BPS] = s["throughput_bps"]
        m.info = {"interval_s": params.interval / 1000, "proto": params.proto, "parallel": params.parallel,
                  **{k: s[k] for k in ("side", "retransmits", "jitter_ms", "lost_percent", "mean_bps") if k in s}}
        if job.error:
            hint = " (is UDP to the iperf port granted by the slice?)" if params.proto == "udp" else ""
            m.errors.append(job.error + hint)
        if "error" in doc:
            m.errors.append(f"iperf3: {doc['error']}")
        return m


TYPE = Iperf()
