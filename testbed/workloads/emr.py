"""emr: FHIR queries from ward-round terminals and doctors' tablets to the EMR, over HTTPS.

Each source runs traffic.http_client's `emr` profile against each target's
EMR: `rate_per_s` requests per second on one keep-alive connection, in the
proportions of `mix` (read a Patient, search a patient's Observations, find
Patients by name, post an Observation), the server's certificate verified
against the run's CA. Every completed request (2xx) is one latency sample
(request sent -> whole reply read); a non-2xx reply, a timeout or a TLS
failure is one error and counts as lost (`loss_max`, `errors_max`).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from testbed.topology.model import Duration
from testbed.workloads.base import Measurement
from testbed.workloads.httpagent import Endpoint, run_agents
from traffic.http_client import DEFAULT_MIX

Op = Literal["read", "search", "find", "post"]


class EmrParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_per_s: float = Field(5.0, gt=0, le=200, description="FHIR requests per second from each source.")
    mix: dict[Op, float] = Field(default_factory=lambda: dict(DEFAULT_MIX),
                                 description="Relative weights of read (Patient by id), search (a patient's "
                                             "Observations), find (Patients by name) and post (an Observation).")
    timeout: Duration = Field(5000.0, ge=100, le=60000, description="Per request; a slower reply is an error.")

    @field_validator("mix")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError("mix weights must be >= 0 with a positive sum")
        return v


class Emr:
    name = "emr"
    summary = "FHIR REST queries over HTTPS (read/search/post): request latency, errors, loss"
    Params = EmrParams
    agent = "traffic.http_client"

    def run(self, tb, w, params: EmrParams, emit) -> list[Measurement]:
        mix = ",".join(f"{op}={wt:g}" for op, wt in params.mix.items())

        def args(src: str, ep: Endpoint) -> list[str]:
            return ["--profile", "emr", "--mix", mix]

        return run_agents(tb, w, self.name, ("emr",), args, params.rate_per_s, params.timeout)


TYPE = Emr()
