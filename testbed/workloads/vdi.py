"""vdi: cloud-desktop sessions from terminals to a desktop host, over the run CA's TLS.

The paper's core service: alliance staff reach the hospital's clinical systems
in cloud desktops. Each source runs traffic.vdi_client (one or more sessions)
against the desktop host's traffic.vdi_server: input events up every ~50-100 ms,
screen updates down (office ~100-150 kbit/s with ~1 Mbit/s peaks, video
~2 Mbit/s). Samples: LATENCY_MS input -> its screen update (the desktop's
responsiveness), THROUGHPUT_BPS downstream per interval (all the source's
sessions), errors per failed session. `to: vdi` spreads the sources over the
desktop pool (each source gets one host, in turn), as a connection broker does.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from testbed.topology.model import Duration
from testbed.workloads import agents
from testbed.workloads.base import LATENCY_MS, THROUGHPUT_BPS, Measurement
from testbed.workloads.targets import assign

SERVICE = "vdi"
MARGIN_S = 30.0  # TLS set-up, the last answers' grace period, a loaded host


class VdiParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["office", "video"] = Field("office", description="Desktop content: office (~125 kbit/s, "
                                             "bursty) or video (~2 Mbit/s).")
    sessions: int = Field(1, ge=1, le=64, description="Concurrent desktop sessions per source.")
    input_interval: Duration = Field(75.0, ge=10, le=5000, description="Mean time between input events "
                                     "(jittered to 2/3..4/3 of it).")
    interval: Duration = Field(1000.0, ge=100, le=60000, description="Throughput sample interval.")


class Vdi:
    name = "vdi"
    summary = "remote-desktop sessions over TLS: input -> screen latency, downstream throughput"
    Params = VdiParams
    agent = "traffic.vdi_client"

    def run(self, tb, w, params: VdiParams, emit) -> list[Measurement]:
        ca = tb.manifest.dir / "pki" / "ca.crt"

        def job(src: str, dst: str, port: int) -> agents.Job:
            return agents.Job(src, dst, agents.agent(
                self.agent, "--host", dst, "--addr", tb.node(dst).ip, "--port", port, "--ca", ca,
                "--mode", params.mode, "--sessions", params.sessions,
                "--input-interval", params.input_interval / 1000, "--duration", w.duration / 1000,
                "--interval", params.interval / 1000))

        jobs, out = agents.plan(w, self.name, assign(tb.topo, w.src, w.dst), job, tb.topo, SERVICE)
        emit(f"{w.name}: {len(jobs)} sources, {params.sessions} {params.mode} session(s) each")
        out += [to_measurement(w.name, self.name, j) for j in agents.run_all(tb, jobs, w.duration / 1000 + MARGIN_S)]
        return out


def to_measurement(workload: str, type_name: str, job: agents.Job) -> Measurement:
    r = job.result or {}
    m = Measurement(workload, type_name, job.src, job.dst, sent=int(r.get("sent", 0)),
                    received=int(r.get("received", 0)), seconds=job.seconds)
    m.samples[LATENCY_MS] = list(r.get("latency_ms", []))
    m.samples[THROUGHPUT_BPS] = list(r.get("throughput_bps", []))
    m.errors = list(r.get("errors", []))
    if job.error:
        m.errors.append(job.error)
    m.info = {k: r[k] for k in ("interval_s", "peak_bps", "bytes_down", "bytes_up", "sessions", "modes") if k in r}
    return m


TYPE = Vdi()
