"""ping: ICMP echo from each source to each target for the entry's duration; every RTT is a sample.

The simplest latency workload, and the one a network engineer trusts: the
kernel's own `ping`, one process per source -> target, all concurrent. Each
reply's RTT is kept, so latency percentiles, jitter and loss are computed
from the raw series (slo.py). A short warm-up first: the userspace datapath
drops the very first packets of a fresh port, which is not the network's
steady-state loss.
"""
from __future__ import annotations

import re
import subprocess
import time

from pydantic import BaseModel, ConfigDict, Field

from testbed.topology.model import Duration
from testbed.workloads.base import LATENCY_MS, Measurement
from testbed.workloads.targets import resolve

_REPLY = re.compile(r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms")
WARMUP = "for i in 1 2 3 4 5; do ping -n -c1 -W2 -q {ip} >/dev/null 2>&1 && break; done; "


class PingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: Duration = Field(200.0, ge=10, description="Time between echo requests (>= 10ms).")
    size: int = Field(56, ge=16, le=65000, description="ICMP payload bytes.")


def parse(text: str) -> dict[int, float]:
    """icmp_seq -> RTT (ms) of each reply in ping's output (a duplicate reply counts once)."""
    out: dict[int, float] = {}
    for seq, rtt in _REPLY.findall(text):
        out.setdefault(int(seq), float(rtt))
    return out


class Ping:
    name = "ping"
    summary = "ICMP echo RTT samples: latency percentiles, jitter, loss"
    Params = PingParams
    agent = None

    def run(self, tb, w, params: PingParams, emit) -> list[Measurement]:
        count = max(1, int(w.duration // params.interval))
        jobs = []
        for src in w.src:
            for dst in resolve(tb.topo, w.dst):
                if dst == src:
                    continue
                ip = tb.node(dst).ip
                cmd = WARMUP.format(ip=ip) + (f"ping -n -c {count} -i {params.interval / 1000:.3f} -s {params.size} "
                                              f"-W 2 {ip}")
                jobs.append((src, dst, tb.node(src).popen(["sh", "-c", cmd], stdout=subprocess.PIPE,
                                                          stderr=subprocess.STDOUT, text=True)))
        t0 = time.monotonic()
        out = []
        for src, dst, proc in jobs:
            try:
                text, _ = proc.communicate(timeout=w.duration / 1000 + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                text, _ = proc.communicate()
            replies = parse(text)
            m = Measurement(w.name, self.name, src, dst, sent=count, received=len(replies),
                            seconds=time.monotonic() - t0)
            m.samples[LATENCY_MS] = [replies[s] for s in sorted(replies)]
            if not replies:
                m.errors.append(text.strip().splitlines()[-1] if text.strip() else "no reply")
            out.append(m)
        return out


TYPE = Ping()
