"""Scoring: a Measurement's raw samples against a workload's SLO, the same way for every type.

Each SLO field that is set gives one CheckResult per source -> target, with the
measured value, the limit and the margin, so a report reader sees how close a
pass was. Percentiles use the nearest-rank method (no interpolation: the value
reported is one that was really measured).

Besides the entries' own SLOs, each slice is judged against its latency budget
(`slice_verdicts`), from the latency samples of the workloads that run in it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from testbed.checks.result import CheckResult
from testbed.topology.model import Slo, Topology
from testbed.workloads.base import COMPLETION_MS, LATENCY_MS, THROUGHPUT_BPS, Measurement


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (pct in 0..100) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def jitter(values: Sequence[float]) -> float | None:
    """Mean absolute difference of consecutive latencies (RFC 3550's IPDV, without smoothing)."""
    if len(values) < 2:
        return None
    return sum(abs(b - a) for a, b in zip(values, values[1:])) / (len(values) - 1)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# SLO field -> (what is measured, unit, compute from a Measurement, higher is better)
def _metrics(m: Measurement) -> dict[str, tuple[float | None, str, bool]]:
    lat = m.samples.get(LATENCY_MS, [])
    return {
        "latency_p50": (percentile(lat, 50), "ms", False),
        "latency_p95": (percentile(lat, 95), "ms", False),
        "latency_p99": (percentile(lat, 99), "ms", False),
        "latency_max": (max(lat) if lat else None, "ms", False),
        "jitter": (jitter(lat), "ms", False),
        "throughput_min": (mean(m.samples.get(THROUGHPUT_BPS, [])), "bit/s", True),
        "loss_max": (m.loss_pct, "%", False),
        "completion_time": (max(m.samples[COMPLETION_MS]) if m.samples.get(COMPLETION_MS) else None, "ms", False),
        "errors_max": (float(len(m.errors)), "errors", False),
    }


def _fmt(value: float, unit: str) -> str:
    if unit == "bit/s":
        return f"{value / 1e6:.2f} Mbit/s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "%":
        return f"{value:.2f}%"
    return f"{value:g} {unit}"


def summary(m: Measurement) -> dict[str, float]:
    """Every metric that can be computed from the samples (for the report, whatever the SLO asks)."""
    return {k: round(v, 4) for k, (v, _u, _h) in _metrics(m).items() if v is not None}


def score(m: Measurement, slo: Slo) -> list[CheckResult]:
    """One CheckResult per SLO field set; a field whose metric could not be measured fails."""
    out: list[CheckResult] = []
    base = f"{m.workload}: {m.src} -> {m.dst}"
    metrics = _metrics(m)
    for fname in Slo.model_fields:
        limit = getattr(slo, fname)
        if limit is None:
            continue
        value, unit, higher_better = metrics[fname]
        info = {"workload": m.workload, "type": m.type, "src": m.src, "dst": m.dst, "slo": fname,
                "limit": limit, "unit": unit, "measured": value}
        if value is None:
            out.append(CheckResult("workload", f"{base} {fname}", "fail",
                                   f"{fname} not measured ({'; '.join(m.errors[:2]) or 'no samples'})", info,
                                   m.seconds))
            continue
        ok = value >= limit if higher_better else value <= limit
        info["margin"] = round((value - limit) if higher_better else (limit - value), 4)
        rel = ">=" if higher_better else "<="
        out.append(CheckResult("workload", f"{base} {fname}", "pass" if ok else "fail",
                               f"{_fmt(value, unit)} (SLO {rel} {_fmt(float(limit), unit)})", info, m.seconds))
    return out


def verdicts(m: Measurement, slo: Slo) -> list[CheckResult]:
    """The SLO verdicts, or, when the entry sets no SLO, one check that the workload ran without errors."""
    if any(getattr(slo, f) is not None for f in Slo.model_fields):
        return score(m, slo)
    ok = not m.errors and m.received > 0
    detail = "ran: " + ", ".join(f"{k}={v:g}" for k, v in summary(m).items()) if ok else \
        f"failed: {'; '.join(m.errors[:3]) or 'nothing completed'}"
    return [CheckResult("workload", f"{m.workload}: {m.src} -> {m.dst}", "pass" if ok else "fail", detail,
                        {"workload": m.workload, "type": m.type, **summary(m)}, m.seconds)]


# A 5QI's packet delay budget is an upper bound on the one-way delay (UE <-> UPF) that 98% of a QoS
# flow's packets meet (TS 23.501 5.7.3.4); the rest may be later without the flow failing it.
PDB_PERCENTILE = 98.0


def one_way_ms(m: Measurement) -> list[float]:
    """A measurement's latency samples as one-way delays: as they are where the type says they are
    one-way (`info["one_way"]`), else round trips (ping, request -> response), counted half each way."""
    lat = m.samples.get(LATENCY_MS, [])
    return list(lat) if m.info.get("one_way") else [v / 2 for v in lat]


def slice_verdicts(topo: Topology, measured: Iterable[Measurement]) -> list[CheckResult]:
    """One check per slice whose workloads (entries with `slice:`) gave latency samples: its budget
    (`latency_budget`, else its 5QI's packet delay budget) against the 98th percentile of each
    flow's one-way delay. Every flow (workload, source -> target) must meet it on its own, as each
    UE's QoS flow must: the slice is judged by its worst flow, so one far member is not averaged away.

    The emulated path runs from the member to the service, so it stands for UE <-> UPF plus the
    N6 hop of a local breakout; a round trip counts half each way (the two directions may differ,
    which a round trip cannot tell apart)."""
    flows: dict[str, list[tuple[str, float, Measurement]]] = {}
    for m in measured:
        if m.slice is None or not (one_way := one_way_ms(m)):
            continue
        value = percentile(one_way, PDB_PERCENTILE)
        assert value is not None
        flows.setdefault(m.slice, []).append((f"{m.workload}: {m.src} -> {m.dst}", value, m))
    out: list[CheckResult] = []
    for sl in topo.slices:
        if sl.name not in flows:
            continue
        budget = sl.budget_ms
        name = f"{sl.name}: latency budget"
        per_flow = {flow: round(v, 4) for flow, v, _m in flows[sl.name]}
        basis = {flow: "one way" if m.info.get("one_way") else "round trip / 2" for flow, _v, m in flows[sl.name]}
        seconds = max(m.seconds for _f, _v, m in flows[sl.name])
        metrics = {"slice": sl.name, "budget_ms": budget, "percentile": PDB_PERCENTILE, "p98_one_way_ms": per_flow,
                   "basis": basis, "budget_from": "latency_budget" if sl.latency_budget is not None
                   else f"5QI {sl.fiveqi}"}
        if budget is None:
            out.append(CheckResult("slice", name, "fail", f"no budget: 5QI {sl.fiveqi} has no standard packet "
                                   "delay budget and the slice sets no latency_budget", metrics, seconds))
            continue
        worst, value, _m = max(flows[sl.name], key=lambda f: f[1])
        metrics |= {"worst_flow": worst, "measured": round(value, 4), "margin": round(budget - value, 4)}
        ok = value <= budget
        out.append(CheckResult("slice", name, "pass" if ok else "fail",
                               f"p{PDB_PERCENTILE:g} one-way {_fmt(value, 'ms')} at worst ({worst}; "
                               f"{len(per_flow)} flow(s)), budget {_fmt(budget, 'ms')} ({metrics['budget_from']})",
                               metrics, seconds))
    return out
