"""Scoring: a Measurement's raw samples against a workload's SLO, the same way for every type.

Each SLO field that is set gives one CheckResult per source -> target, with the
measured value, the limit and the margin, so a report reader sees how close a
pass was. Percentiles use the nearest-rank method (no interpolation: the value
reported is one that was really measured).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from testbed.checks.result import CheckResult
from testbed.topology.model import Slo
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
