"""iot: self-service payment kiosks and ward terminals: small periodic HTTPS requests at a low rate.

Each source sends one request every `interval` to each target: a payment
(`POST /payments`, the kiosk's transaction, to a `payment` service) or a
heartbeat (`GET` of the service's health or metadata page, to any of the
HTTP services below), over one keep-alive connection with the server's
certificate verified against the run's CA (plain HTTP for oa and mec-cache).
Every answered request (2xx) is one latency sample; a non-2xx reply, a
timeout or a TLS failure is one error and counts as lost.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from testbed.topology.model import Duration
from testbed.workloads.base import Measurement
from testbed.workloads.httpagent import Endpoint, run_agents

# what a heartbeat asks each service for
HEARTBEAT_PATH = {"payment": "/health", "emr": "/fhir/metadata", "mec-cache": "/health", "oa": "/"}


class IotParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: Duration = Field(1000.0, ge=50, le=600000, description="Time between requests (50ms..10m).")
    request: Literal["payment", "heartbeat"] = Field(
        "payment", description="payment: POST /payments to a payment service; heartbeat: GET its health page.")
    timeout: Duration = Field(5000.0, ge=100, le=60000, description="Per request; a slower reply is an error.")


class Iot:
    name = "iot"
    summary = "kiosks and ward terminals: periodic small HTTPS requests (payment/heartbeat), latency and errors"
    Params = IotParams
    agent = "traffic.http_client"

    def run(self, tb, w, params: IotParams, emit) -> list[Measurement]:
        wanted = ("payment",) if params.request == "payment" else tuple(HEARTBEAT_PATH)

        def args(src: str, ep: Endpoint) -> list[str]:
            if params.request == "payment":
                return ["--profile", "payment"]
            return ["--profile", "get", "--path", HEARTBEAT_PATH[ep.service]]

        return run_agents(tb, w, self.name, wanted, args, 1000.0 / params.interval, params.timeout)


TYPE = Iot()
