"""video: a video consultation stream (tertiary expert <-> clinic), RTP-like over UDP to the video port.

Each source runs `traffic.media send` towards the target's video service (the
receiver the catalogue starts on udp 5004 in every node offering `video`):
frames at `fps` and `bitrate`, packets carrying sequence number and send
time. The receiver timestamps each packet in the kernel; the sender then
fetches its report over the same port. Samples: LATENCY_MS one-way delay per
packet (info one_way=True: every node shares the host's clock), THROUGHPUT_BPS
received per second; sent / received packets give the loss; the receiver's
RFC 3550 jitter, reordering and duplicates go to info. For the other
direction of the consultation, declare a second entry with from/to swapped.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from testbed.topology.model import Rate
from testbed.workloads import agents
from testbed.workloads.base import LATENCY_MS, THROUGHPUT_BPS, Measurement
from testbed.workloads.targets import assign

SERVICE = "video"
DEFAULT_BITRATE = 2_000_000
MARGIN_S = 30.0  # path check, the report's fetch, a loaded host


class VideoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bitrate: Rate | None = Field(None, description="Stream bit rate (default: the entry's rate, else 2Mbit).")
    fps: int = Field(30, ge=1, le=120, description="Frames per second.")
    gop: int = Field(30, ge=1, le=600, description="A key frame (3x the size of the others) every this many frames.")
    payload: int = Field(1200, ge=64, le=1472, description="Most bytes per packet.")


class Video:
    name = "video"
    summary = "RTP-like UDP media stream: one-way delay, RFC 3550 jitter, loss, received throughput"
    Params = VideoParams
    agent = "traffic.media"

    def run(self, tb, w, params: VideoParams, emit) -> list[Measurement]:
        bitrate = params.bitrate or w.rate or DEFAULT_BITRATE

        def job(src: str, dst: str, port: int) -> agents.Job:
            return agents.Job(src, dst, agents.agent(
                self.agent, "send", "--to", tb.node(dst).ip, "--port", port, "--bitrate", bitrate,
                "--fps", params.fps, "--gop", params.gop, "--payload", params.payload,
                "--duration", w.duration / 1000))

        jobs, out = agents.plan(w, self.name, assign(tb.topo, w.src, w.dst), job, tb.topo, SERVICE)
        emit(f"{w.name}: {len(jobs)} streams at {bitrate / 1e6:g} Mbit/s, {params.fps} fps")
        out += [to_measurement(w.name, self.name, j) for j in agents.run_all(tb, jobs, w.duration / 1000 + MARGIN_S)]
        return out


def to_measurement(workload: str, type_name: str, job: agents.Job) -> Measurement:
    r = job.result or {}
    rx = r.get("receiver") or {}
    m = Measurement(workload, type_name, job.src, job.dst, sent=int(r.get("sent", 0)),
                    received=int(rx.get("received", 0)), seconds=job.seconds)
    m.samples[LATENCY_MS] = list(rx.get("delays_ms", []))
    m.samples[THROUGHPUT_BPS] = list(rx.get("throughput_bps", []))
    m.info = {"one_way": True, "interval_s": rx.get("interval_s", 1.0)}
    m.info |= {k: rx[k] for k in ("reordered", "duplicates", "lost") if k in rx}
    if "jitter_ms" in rx:
        m.info["jitter_rfc3550_ms"] = rx["jitter_ms"]  # smoothed; the SLO's jitter reads the raw delays
    m.info |= {k: r[k] for k in ("bitrate", "fps", "sent_bytes", "send_errors") if k in r}
    if job.error:
        m.errors.append(job.error)
    for doc in (r, rx):
        if "error" in doc:
            m.errors.append(str(doc["error"]))
    return m


TYPE = Video()
