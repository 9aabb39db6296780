"""What a reader asks of a report, computed once for every writer (HTML, terminal, JUnit):
which slice each verdict belongs to, the per-slice SLO table, the isolation heat map.

Pure functions of a RunReport, so `testbed report` renders an old report.json
exactly as the run that wrote it did.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from testbed.checks.result import CheckResult
from testbed.report.model import RunReport

NO_SLICE = "(no slice)"
# Isolation verdicts as the prober writes them (metrics.verdict), in the heat map's order.
VERDICTS = ("pass", "LEAK", "FALSE BLOCK")
MATRIX_KINDS = ("isolation", "attack:forbidden-port")
SLO_KINDS = ("workload", "slice")  # per-flow SLO verdicts; verdicts on a slice as a whole  # rows of the should-pass / must-fail matrix
_PAIR = re.compile(r"^(\S+) -> (\S+) ")  # matrix row names start 'src -> dst ...' (node names have no spaces)
_SLO_TEXT = {"latency_p50": "latency p50", "latency_p95": "latency p95", "latency_p99": "latency p99",
             "latency_max": "latency max", "jitter": "jitter", "throughput_min": "throughput",
             "loss_max": "loss", "completion_time": "completion time", "errors_max": "errors"}
_HIGHER_BETTER = {"throughput_min"}


def fmt_value(value: float | None, unit: str) -> str:
    """A measured value or limit as a person reads it (bit/s in Mbit/s, ms with two decimals)."""
    if value is None:
        return "not measured"
    if unit == "bit/s":
        return f"{value / 1e6:.2f} Mbit/s"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if abs(value) >= 1000 else f"{value:.2f} ms"
    if unit == "%":
        return f"{value:.2f}%"
    return f"{value:g} {unit}".strip()


@dataclass
class SloRow:
    """One line of the per-slice table: one SLO verdict (or a workload that did not run)."""

    slice: str
    workload: str
    path: str  # 'src -> dst', empty when the workload never ran
    slo: str  # 'latency p95 <= 50.00 ms'
    measured: str
    status: str
    detail: str
    margin: str = ""


def workload_slices(rep: RunReport) -> dict[str, str]:
    """workload name -> slice, from the network description, else from the measurements."""
    out = {m["workload"]: m["slice"] for m in rep.measurements if m.get("slice")}
    out.update({w["name"]: w["slice"] for w in rep.network.get("workloads", []) if w.get("slice")})
    return out


def slice_of_check(c: CheckResult, slices: dict[str, str]) -> str:
    name = c.metrics.get("workload") or c.name.split(":", 1)[0]
    return slices.get(name, NO_SLICE)


def _slo_row(c: CheckResult, slice_name: str) -> SloRow:
    m = c.metrics
    wl = m.get("workload") or c.name.split(":", 1)[0]
    path = f"{m['src']} -> {m['dst']}" if "src" in m and "dst" in m else ""
    if "slo" in m:
        rel = "≥" if m["slo"] in _HIGHER_BETTER else "≤"
        unit = m.get("unit", "")
        slo = f"{_SLO_TEXT.get(m['slo'], m['slo'])} {rel} {fmt_value(m.get('limit'), unit)}"
        margin = "" if m.get("margin") is None else fmt_value(m["margin"], unit)
        return SloRow(slice_name, wl, path, slo, fmt_value(m.get("measured"), unit), c.status, c.detail, margin)
    slo = "runs without errors" if c.status != "skip" else "not run"
    measured = c.detail.split(": ", 1)[-1] if c.status == "pass" else ""
    return SloRow(slice_name, wl, path, slo, measured, c.status, c.detail)


def _slice_row(c: CheckResult) -> SloRow:
    """A verdict on a slice as a whole (kind 'slice', e.g. its latency budget over all its flows)."""
    m = c.metrics
    what = c.name.split(": ", 1)[-1]
    slo = f"{what} ≤ {fmt_value(m['budget_ms'], 'ms')}" if m.get("budget_ms") is not None else what
    measured = fmt_value(m["measured"], "ms") if isinstance(m.get("measured"), (int, float)) else ""
    margin = fmt_value(m["margin"], "ms") if isinstance(m.get("margin"), (int, float)) else ""
    return SloRow(m.get("slice", NO_SLICE), "(whole slice)", m.get("worst_flow", ""), slo, measured, c.status,
                  c.detail, margin)


def slo_rows(rep: RunReport) -> list[SloRow]:
    """Every workload verdict and slice-wide verdict, grouped by slice in the file's slice order
    (workloads in no slice last)."""
    slices = workload_slices(rep)
    rows = [_slo_row(c, slice_of_check(c, slices)) if c.kind == "workload" else _slice_row(c)
            for c in rep.checks if c.kind in SLO_KINDS]
    order = {s["name"]: i for i, s in enumerate(rep.slices)}
    return sorted(rows, key=lambda r: (order.get(r.slice, len(order)), r.slice))  # stable: file order within


def node_groups(rep: RunReport) -> dict[str, str]:
    """node -> heat map group: the slices it is a member of ('a+b'), or its kind when it is in none
    (servers, desktops, gNBs: what slices reach rather than who is in them)."""
    return {n["name"]: "+".join(n.get("slices") or []) or n["kind"] for n in rep.network.get("nodes", [])}


@dataclass
class HeatMap:
    """Matrix rows by source group x target group, counted by verdict."""

    groups: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    unplaced: int = 0  # rows whose nodes the network description does not know

    def cell(self, src: str, dst: str) -> dict[str, int]:
        return self.cells.get((src, dst), {})

    @property
    def sources(self) -> list[str]:
        return [g for g in self.groups if any(s == g for s, _ in self.cells)]

    @property
    def targets(self) -> list[str]:
        return [g for g in self.groups if any(d == g for _, d in self.cells)]


def _group_order(rep: RunReport, groups: set[str]) -> list[str]:
    """Slice groups first (in file order), then kinds (alphabetical)."""
    order = {s["name"]: i for i, s in enumerate(rep.slices)}

    def key(g: str) -> tuple:
        first = g.split("+")[0]
        return (0, order[first], g) if first in order else (1, 0, g)
    return sorted(groups, key=key)


def heat_map(rep: RunReport) -> HeatMap:
    """The isolation matrix folded into groups; empty when the run probed nothing or the
    report has no network description (schema version 1)."""
    groups = node_groups(rep)
    hm = HeatMap()
    if not groups:
        return hm
    for c in rep.checks:
        verdict = c.metrics.get("verdict")
        m = _PAIR.match(c.name)
        if c.kind not in MATRIX_KINDS or verdict not in VERDICTS or not m:
            continue
        src, dst = groups.get(m[1]), groups.get(m[2])
        if src is None or dst is None:
            hm.unplaced += 1
            continue
        cell = hm.cells.setdefault((src, dst), {v: 0 for v in VERDICTS})
        cell[verdict] += 1
    hm.groups = _group_order(rep, {g for pair in hm.cells for g in pair})
    return hm


def slice_overview(rep: RunReport) -> list[dict[str, Any]]:
    """Per slice: its definition and how its verdicts went (SLOs; isolation rows sent by its members)."""
    rows = slo_rows(rep)
    groups = node_groups(rep)
    out = []
    for s in rep.slices:
        mine = [r for r in rows if r.slice == s["name"]]
        iso = {v: 0 for v in VERDICTS}
        for c in rep.checks:
            m = _PAIR.match(c.name)
            if c.kind in MATRIX_KINDS and m and s["name"] in groups.get(m[1], "").split("+"):
                iso[c.metrics.get("verdict", "pass")] = iso.get(c.metrics.get("verdict", "pass"), 0) + 1
        out.append(dict(s, slo_pass=sum(r.status == "pass" for r in mine), slo_fail=sum(r.status == "fail" for r in mine),
                        slo_skip=sum(r.status == "skip" for r in mine), isolation=iso))
    return out


def edge_comparison(rep: RunReport) -> list[dict[str, Any]]:
    """MEC against central, side by side: for each source and slice with workloads both to a MEC host and
    to a host elsewhere, their round trips (p50/p95) and run times, and the UPF that served the slice."""
    kinds = {n["name"]: n["kind"] for n in rep.network.get("nodes", [])}
    upf_of = {(ue["name"], s["slice"]): s["upf"] for ue in rep.ran.get("ues", []) for s in ue["sessions"]}
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for m in rep.measurements:
        side = "mec" if kinds.get(m.get("dst", "")) == "mec" else "central"
        groups.setdefault((m.get("src", ""), m.get("slice", "")), {"mec": [], "central": []})[side].append(m)
    out = []
    for (src, sl), sides in sorted(groups.items()):
        for mec, central in zip(sides["mec"], sides["central"]):
            row = {"src": src, "slice": sl, "upf": upf_of.get((src, sl), "-")}
            for side, m in (("mec", mec), ("central", central)):
                summ = m.get("summary", {})
                row[side] = {"workload": m.get("workload"), "dst": m.get("dst"), "p50": summ.get("latency_p50"),
                             "p95": summ.get("latency_p95"), "seconds": round(float(m.get("seconds") or 0), 2)}
            out.append(row)
    return out
