"""dicom: store a study to the PACS and retrieve it back, as radiology does across the alliance.

Each source runs traffic.dicom_client against each target PACS (all at once):
C-ECHO, then C-STORE of a synthetic study (`modality`, about `study_size`
bytes of pixels in instances of `instance_size`), then C-FIND of it and C-GET
of the whole study, `studies` times. Samples:
- COMPLETION_MS: one per transfer (store, then retrieve), association request to release;
- THROUGHPUT_BPS: one per transfer, its bytes over its time (info["throughput_per"] = "transfer");
- LATENCY_MS: the C-ECHO and C-FIND round trips.
A refused association, a failed C-STORE/C-FIND/C-GET status, an instance count
that does not match, or a transfer cut by the time limit is an error.

`duration` is the time the workload is given: what is not done by then is
aborted and reported (a 64 MB study needs about 6 s each way at 100 Mbit/s).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from testbed.topology.model import Size
from testbed.workloads.agents import Job, agent, measured, plan, run_all
from testbed.workloads.base import COMPLETION_MS, LATENCY_MS, THROUGHPUT_BPS, Measurement
from testbed.workloads.targets import every_pair

MARGIN_S = 30.0  # interpreter start, imports, and the agent's own clean exit after its deadline


class DicomParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modality: Literal["CT", "MR", "CR", "DX", "US", "MG"] = Field(
        "CT", description="Sets the SOP class and default instance size (CT 512 KiB slices, MG 40 MiB views...).")
    study_size: Size = Field(64 * 2**20, ge=1, le=4 * 2**30,
                             description="Pixel bytes per study, e.g. '64m'; a mammography study is about 160m, "
                                         "a 64-slice CT up to 3g.")
    instance_size: Size | None = Field(None, ge=1024, le=256 * 2**20,
                                       description="Pixel bytes per instance (default: the modality's).")
    studies: int = Field(1, ge=1, le=100, description="Studies each source stores (and retrieves), one after another.")
    retrieve: bool = Field(True, description="C-FIND and C-GET each study back after storing it.")


def measurement(w, kind: str, job: Job) -> Measurement:
    """A Measurement from the agent's JSON document (or its failure)."""
    m, doc = measured(w.name, kind, job)
    if doc is None:
        return m
    transfers = doc.get("transfers", [])
    m.samples[LATENCY_MS] = [*doc.get("echo_ms", []), *doc.get("find_ms", [])]
    m.samples[COMPLETION_MS] = [t["ms"] for t in transfers]
    m.samples[THROUGHPUT_BPS] = [t["bytes"] * 8 / (t["ms"] / 1000) for t in transfers if t["ms"] > 0 and t["ok"]]
    m.info.update({"throughput_per": "transfer", "transfers": transfers,
                   "echo_ms": doc.get("echo_ms", []), "find_ms": doc.get("find_ms", [])})
    return m


class Dicom:
    name = "dicom"
    summary = "DICOM study store (C-STORE) and retrieve (C-FIND, C-GET): transfer time, throughput, C-ECHO/C-FIND RTT"
    Params = DicomParams
    agent = "traffic.dicom_client"

    def run(self, tb, w, params: DicomParams, emit) -> list[Measurement]:
        deadline = w.duration / 1000

        def job(src: str, dst: str, port: int) -> Job:
            argv = agent(self.agent, "--host", tb.node(dst).ip, "--port", port, "--called-ae", "PACS",
                         "--calling-ae", src.upper()[:16], "--modality", params.modality,
                         "--study-size", params.study_size, "--studies", params.studies,
                         "--patient-id", f"TB-{src}"[:64], "--deadline", f"{deadline:.3f}")
            if params.instance_size:
                argv += ["--instance-size", str(params.instance_size)]
            if not params.retrieve:
                argv.append("--no-retrieve")
            return Job(src, dst, argv)

        jobs, out = plan(w, self.name, every_pair(tb.topo, w.src, w.dst), job, tb.topo, "pacs")
        emit(f"{w.name}: {len(jobs)} study transfers of {params.study_size / 2**20:.0f} MiB ({params.modality})")
        out += [measurement(w, self.name, j) for j in run_all(tb, jobs, deadline + MARGIN_S)]
        return out


TYPE = Dicom()
