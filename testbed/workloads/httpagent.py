"""Run traffic.http_client from every source to every target's HTTP(S) service; one Measurement per pair.

Shared by the `emr` and `iot` types (they differ only in the agent's profile
and rate). The target's port comes from the topology (a file may move a
service's port) and HTTPS from the service catalogue: a TLS service is
verified against the run's CA with the node's name, as any real client of the
run would. Every agent runs concurrently, bounded by the entry's duration
plus the per-request timeout and a margin, and is killed past it
(testbed.workloads.agents runs them, as it does every other type's).
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from testbed import services
from testbed.slicing.policy import targets as service_targets
from testbed.workloads.agents import Job, agent, measured, plan, run_all
from testbed.workloads.base import LATENCY_MS, Measurement
from testbed.workloads.targets import resolve

MARGIN_S = 20.0  # agent start-up and warm-up beyond duration + timeout


@dataclass(frozen=True)
class Endpoint:
    node: str
    service: str
    port: int
    tls: bool


def endpoints(tb, ref: str, wanted: tuple[str, ...]) -> list[tuple[str, Endpoint | None]]:
    """(node, its HTTP endpoint) for each target `ref` means; None when the node offers none of `wanted`."""
    topo = tb.topo
    if not any(n.name == ref for n in topo.nodes) and ref in wanted:  # a service name
        pairs = [(node, svc) for node, svc in service_targets(topo, ref)]
    else:
        pairs = []
        for node in resolve(topo, ref):
            offered = {s.name: s for s in topo.node(node).services}
            svc = next((offered[name] for name in wanted if name in offered), None)
            pairs.append((node, svc))
    out: list[tuple[str, Endpoint | None]] = []
    for node, svc in pairs:
        if svc is None:
            out.append((node, None))
            continue
        spec = services.spec(svc.name)
        out.append((node, Endpoint(node, svc.name, svc.port, bool(spec and spec.tls))))
    return out


def seed_of(*parts: str) -> int:
    """A stable seed per workload, source and target: reproducible, and different for each terminal."""
    return zlib.crc32("/".join(parts).encode()) & 0x7FFFFFFF


def run_agents(tb, w, type_name: str, wanted: tuple[str, ...],
               profile_args: Callable[[str, Endpoint], list[str] | str], rate_per_s: float,
               timeout_ms: float) -> list[Measurement]:
    """Start one agent per source -> target endpoint (all concurrently) and collect its samples.

    `profile_args(src, endpoint)` gives the agent's profile arguments, or a string saying why this
    endpoint cannot be measured (reported as that pair's error)."""
    ca = str(tb.manifest.dir / "pki" / "ca.crt")

    def job(src: str, dst: str, ep: Endpoint | None) -> Job | str:
        extra = profile_args(src, ep) if ep is not None else f"{dst} offers none of {', '.join(wanted)}"
        if isinstance(extra, str):
            return extra
        return Job(src, dst, agent(
            "traffic.http_client", "--host", dst, "--ip", tb.node(dst).ip, "--port", ep.port, "--source", src,
            "--seed", seed_of(w.name, src, dst), "--rate", f"{rate_per_s:g}", "--duration", f"{w.duration / 1000:g}",
            "--timeout", f"{timeout_ms / 1000:g}", *(["--ca", ca] if ep.tls else []), *extra), extra={"endpoint": ep})

    pairs = [(src, dst, ep) for src in w.src for dst, ep in endpoints(tb, w.dst, wanted) if dst != src]
    jobs, out = plan(w, type_name, pairs, job)
    for j in run_all(tb, jobs, w.duration / 1000 + timeout_ms / 1000 + MARGIN_S):
        out.append(measurement(w.name, type_name, j))
        out[-1].info["rate_per_s"] = rate_per_s
    return out


def measurement(workload: str, type_name: str, job: Job) -> Measurement:
    """The agent's JSON report as a Measurement (or its failure as the pair's error)."""
    ep = job.extra["endpoint"]
    m, got = measured(workload, type_name, job)
    m.info.update({"service": ep.service, "port": ep.port, "https": ep.tls})
    if got is None:
        return m
    m.samples[LATENCY_MS] = got["latency_ms"]
    m.info.update({k: got[k] for k in ("ops", "status", "late", "tls", "warmup_ms", "warmup_error", "seconds")
                   if k in got})
    return m
