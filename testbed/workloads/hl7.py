"""hl7: HL7 v2 messages over MLLP to the HIS or LIS, each acknowledged; the ACK time is the sample.

Each source runs traffic.hl7_client against each target (all at once) on one
connection: `rate_per_s` messages per second for the entry's `duration`,
cycling through `messages` (ADT^A01 admissions, ORM^O01 lab orders, ORU^R01
results), each asking for an accept acknowledgement only (enhanced mode:
MSH-15 AL, MSH-16 NE) and waiting for it. LATENCY_MS is message -> ACK of each
message taken (CA, or AA from a receiver in original mode); a CE/CR (AE/AR)
acknowledgement, a mismatched control id or no ACK within `timeout` is an
error and counts as lost (`loss_max`, `errors_max`). `acks` counts the codes.

`to:` is a service (his, lis) or a node; a node offering both is sent to on
the service named by `service` (default: his if it offers it, else lis).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from testbed.topology.model import Duration
from testbed.workloads.agents import Job, agent, measured, plan, run_all
from testbed.workloads.base import LATENCY_MS, Measurement
from testbed.workloads.targets import every_pair, service_port

MARGIN_S = 20.0
Message = Literal["ADT^A01", "ORM^O01", "ORU^R01"]
SERVICES = ("his", "lis")


class Hl7Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_per_s: float = Field(10.0, gt=0, le=1000, description="Messages per second from each source.")
    messages: list[Message] = Field(["ADT^A01", "ORU^R01"], min_length=1,
                                    description="Message types sent in turn.")
    timeout: Duration = Field(5000.0, ge=100, le=60000, description="Per message; a later ACK is an error.")
    service: Literal["his", "lis"] | None = Field(None, description="Which MLLP service of a target node.")


def target_service(topo, w, params: Hl7Params, dst: str) -> str | None:
    """The MLLP service of `dst` the entry means."""
    if w.dst in SERVICES:
        return w.dst
    if params.service:
        return params.service
    return next((s for s in SERVICES if service_port(topo, dst, s) is not None), None)


class Hl7:
    name = "hl7"
    summary = "HL7 v2 over MLLP (ADT/ORM/ORU) to the HIS/LIS: message -> ACK latency, rejects, timeouts"
    Params = Hl7Params
    agent = "traffic.hl7_client"

    def run(self, tb, w, params: Hl7Params, emit) -> list[Measurement]:
        duration = w.duration / 1000

        def job(src: str, dst: str) -> Job | str:
            svc = target_service(tb.topo, w, params, dst)
            port = service_port(tb.topo, dst, svc) if svc else None
            if port is None:
                return f"{dst} offers no his/lis service"
            return Job(src, dst, agent(
                self.agent, "--host", tb.node(dst).ip, "--port", port, "--interval", f"{1 / params.rate_per_s:.6f}",
                "--duration", f"{duration:.3f}", "--types", ",".join(params.messages),
                "--timeout", f"{params.timeout / 1000:.3f}", "--sender", src.upper()[:20],
                "--receiver", svc.upper(), "--patient-id", f"P-{src}"[:20]))

        jobs, out = plan(w, self.name, every_pair(tb.topo, w.src, w.dst), job)
        for j in run_all(tb, jobs, duration + params.timeout / 1000 * 2 + MARGIN_S):
            m, doc = measured(w.name, self.name, j)
            if doc is not None:
                m.samples[LATENCY_MS] = doc.get("latency_ms", [])
                m.info.update({"acks": doc.get("acks", {}), "connects": doc.get("connects", 0)})
            out.append(m)
        return out


TYPE = Hl7()
