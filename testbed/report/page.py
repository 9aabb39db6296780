"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, no fetches), so it
opens from a CI artefact, a mail attachment or an air-gapped hospital network alike.

Order follows what a reader asks: did it pass; how did each slice do against its
SLOs; what did the measurements look like; did isolation hold (heat map); what
was built (drawing); on what machine. Every check stays listed, collapsed, last.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from testbed.errors import TestbedError
from testbed.report import graph, plots, views
from testbed.report.model import SCHEMA_VERSION, RunReport

LATENCY_SLOS = ("latency_p50", "latency_p95", "latency_p99", "latency_max")
PLATFORM_LABELS = {"datapath": "OVS datapath", "impairments": "link impairments", "ovs": "Open vSwitch",
                   "controller": "SDN controller app", "kernel": "kernel release", "os_ken": "os-ken",
                   "testbed": "testbed version", "features": "kernel features", "cpus": "CPUs"}


def _limits(rep: RunReport) -> dict[str, dict[str, float]]:
    """workload -> {slo field: limit}, from the verdicts (present in every report version)."""
    out: dict[str, dict[str, float]] = {}
    for c in rep.checks:
        m = c.metrics
        if c.kind == "workload" and "slo" in m and m.get("limit") is not None:
            out.setdefault(m["workload"], {})[m["slo"]] = float(m["limit"])
    return out


def workload_charts(rep: RunReport) -> list[dict[str, Any]]:
    """Per workload that left samples: a latency CDF and/or a throughput-over-time chart."""
    by_wl: dict[str, list[dict[str, Any]]] = {}
    for m in rep.measurements:
        by_wl.setdefault(m["workload"], []).append(m)
    limits, slices = _limits(rep), views.workload_slices(rep)
    out = []
    for wl, ms in by_wl.items():
        lat = {f"{m['src']} -> {m['dst']}": m.get("samples", {}).get("latency_ms", []) for m in ms}
        thr = {f"{m['src']} -> {m['dst']}": m.get("samples", {}).get("throughput_bps", []) for m in ms}
        spacing = {f"{m['src']} -> {m['dst']}": float((m.get("info") or {}).get("interval_s") or 1.0) for m in ms}
        lim = limits.get(wl, {})
        marks = {f"SLO {k.split('_')[1]} {v:g} ms": v for k, v in lim.items() if k in LATENCY_SLOS}
        charts = [plots.latency_cdf(f"{wl}: latency CDF", lat, marks) if any(lat.values()) else "",
                  plots.throughput_over_time(f"{wl}: throughput", thr, spacing, lim.get("throughput_min"))
                  if any(thr.values()) else ""]
        errors = sorted({e for m in ms for e in m.get("errors", [])})
        out.append({"workload": wl, "type": ms[0].get("type", ""), "slice": slices.get(wl, views.NO_SLICE),
                    "charts": [Markup(c) for c in charts if c], "errors": errors})
    return out


def topology_svg(rep: RunReport) -> tuple[Markup | None, str]:
    """(the drawing as inline SVG, why not) — a report never fails for want of a drawing."""
    if not rep.network.get("nodes"):
        return None, "this report carries no network description (written by an older testbed)"
    try:
        svg = graph.render(rep.network, rep.slices, "svg").decode()
    except TestbedError as exc:
        return None, str(exc)
    svg = svg[svg.index("<svg"):]
    # Graphviz sizes the drawing in points; the page scales it down to fit, never up.
    svg = re.sub(r'<svg width="([^"]*)" height="[^"]*"', r'<svg class="topo" role="img" style="max-width:\1"', svg,
                 count=1)
    return Markup(svg), ""


def heat_style(cell: dict[str, int], most: int) -> str:
    """Red where anything leaked, amber where a granted flow was blocked, green (darker = more rows) else."""
    if cell.get("LEAK"):
        return "background:hsl(0,78%,62%);color:#fff"
    if cell.get("FALSE BLOCK"):
        return "background:hsl(35,95%,62%)"
    total = sum(cell.values())
    light = 93 - 25 * (total / most if most else 0)
    return f"background:hsl(135,45%,{light:.0f}%)"


def started_text(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def context(rep: RunReport) -> dict[str, Any]:
    hm = views.heat_map(rep)
    svg, why = topology_svg(rep)
    return {"r": rep, "summary": rep.summary(), "slo_rows": views.slo_rows(rep),
            "overview": views.slice_overview(rep), "edge": views.edge_comparison(rep), "charts": workload_charts(rep), "hm": hm,
            "hm_most": max((sum(c.values()) for c in hm.cells.values()), default=0), "heat_style": heat_style,
            "topology_svg": svg, "topology_missing": why, "colours": graph.slice_colours(rep.slices),
            "started": started_text(rep.started), "counts": _status_counts(rep), "schema_version": SCHEMA_VERSION,
            "labels": PLATFORM_LABELS}


def _status_counts(rep: RunReport) -> dict[str, int]:
    return {s: sum(c.status == s for c in rep.checks) for s in ("pass", "fail", "skip")}


def write_html(rep: RunReport, path: Path) -> None:
    env = Environment(loader=PackageLoader("testbed", "report"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    path.write_text(env.get_template("report.html.j2").render(**context(rep)), encoding="utf-8")
