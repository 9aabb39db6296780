"""Latency CDFs and throughput-over-time charts as inline SVG, from a report's raw samples.

Hand-written SVG rather than a plotting library: the HTML report must be one
self-contained file with no scripts or fetches, the charts are two simple kinds,
and SVG text stays sharp and searchable (a test reads the DOM). A chart shows
the SLO limits it is judged against, so a reader sees how close a pass was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

W, H = 560, 300  # viewBox size; the page scales it
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 44
MAX_POINTS = 1500  # per series: more only thickens the line and the file
LINE_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#8c564b", "#7f7f7f")
LEGEND_MAX = 8
OFF_SCALE = 4.0  # an x mark beyond this many times the largest sample is named, not drawn


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]


@dataclass
class Chart:
    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    marks: list[tuple[str, float, str]] = field(default_factory=list)  # ('x'|'y', value, label): SLO limits
    y_range: tuple[float, float] | None = None


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    return [round(first + i * step, 10) for i in range(int(math.ceil((hi - first) / step)) + 1)]


def _tick_text(v: float) -> str:
    return f"{v:g}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]


def render(chart: Chart) -> str:
    """The chart as an <svg> element (role=img, titled, one polyline per series)."""
    xs = [x for s in chart.series for x, _ in s.points]
    ys = [y for s in chart.series for _, y in s.points] + [v for a, v, _ in chart.marks if a == "y"]
    if not xs or not ys:
        return ""
    # A latency limit far right of every sample would squeeze the curves into a sliver: it is named
    # in a corner instead ("off scale"), since the samples are what the chart is for.
    marks = [m for m in chart.marks if m[0] == "y" or m[1] <= OFF_SCALE * max(xs)]
    off_scale = [label for a, v, label in chart.marks if (a, v, label) not in marks]
    xs += [v for a, v, _ in marks if a == "x"]
    xt = nice_ticks(min(0.0, min(xs)), max(xs))
    yt = nice_ticks(*(chart.y_range or (min(0.0, min(ys)), max(ys))))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    height = H + _legend_height(len(chart.series))

    def sx(x: float) -> float:
        return LEFT + (x - xt[0]) / (xt[-1] - xt[0]) * pw

    def sy(y: float) -> float:
        return TOP + ph - (y - yt[0]) / (yt[-1] - yt[0]) * ph

    out = [f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{escape(chart.title)}</title>",
           f'<text class="t" x="{LEFT}" y="18">{escape(chart.title)}</text>']
    for v in yt:
        out.append(f'<line class="g" x1="{LEFT}" x2="{W - RIGHT}" y1="{sy(v):.1f}" y2="{sy(v):.1f}"/>'
                   f'<text class="yt" x="{LEFT - 6}" y="{sy(v) + 4:.1f}">{_tick_text(v)}</text>')
    for v in xt:
        out.append(f'<line class="g" x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{TOP}" y2="{TOP + ph}"/>'
                   f'<text class="xt" x="{sx(v):.1f}" y="{TOP + ph + 16}">{_tick_text(v)}</text>')
    out.append(f'<text class="al" x="{LEFT + pw / 2}" y="{H - 6}">{escape(chart.x_label)}</text>'
               f'<text class="al" transform="translate(14 {TOP + ph / 2}) rotate(-90)">{escape(chart.y_label)}</text>')
    for i, label in enumerate(off_scale):
        out.append(f'<text class="slot" x="{W - RIGHT - 4}" y="{TOP + ph - 8 - 14 * i}" text-anchor="end">'
                   f"{escape(label)} (off scale)</text>")
    for axis, v, label in marks:
        x1, x2, y1, y2 = (sx(v), sx(v), TOP, TOP + ph) if axis == "x" else (LEFT, W - RIGHT, sy(v), sy(v))
        tx, ty, anchor = (x1 - 4, TOP + 12, "end") if axis == "x" else (W - RIGHT - 4, y1 - 5, "end")
        out.append(f'<line class="slo" x1="{x1:.1f}" x2="{x2:.1f}" y1="{y1:.1f}" y2="{y2:.1f}"/>'
                   f'<text class="slot" x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}">{escape(label)}</text>')
    for i, s in enumerate(chart.series):
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in _thin(s.points))
        out.append(f'<polyline class="s" stroke="{LINE_COLOURS[i % len(LINE_COLOURS)]}" points="{pts}">'
                   f"<title>{escape(s.label)}</title></polyline>")
    out += _legend(chart.series, LEFT, H + 8)
    out.append("</svg>")
    return "".join(out)


def _legend(series: list[Series], x: float, y: float) -> list[str]:
    """Under the plot, two entries a row: inside it, a legend would hide the curves it names."""
    shown = series[:LEGEND_MAX]
    out = []
    for i, s in enumerate(shown):
        c = LINE_COLOURS[i % len(LINE_COLOURS)]
        lx, ly = x + (i % 2) * (W - LEFT - RIGHT) / 2, y + 16 * (i // 2)
        out.append(f'<line x1="{lx:.1f}" x2="{lx + 18:.1f}" y1="{ly - 4}" y2="{ly - 4}" stroke="{c}" stroke-width="3"/>'
                   f'<text class="lt" x="{lx + 24:.1f}" y="{ly}">{escape(s.label)}</text>')
    if len(series) > LEGEND_MAX:
        out.append(f'<text class="lt" x="{x}" y="{y + 16 * (LEGEND_MAX // 2)}">'
                   f"+{len(series) - LEGEND_MAX} more (hover a line for its name)</text>")
    return out


def _legend_height(n: int) -> int:
    rows = (min(n, LEGEND_MAX) + 1) // 2 + (1 if n > LEGEND_MAX else 0)
    return 16 * rows + 6


def cdf_points(values: list[float]) -> list[tuple[float, float]]:
    """The empirical CDF as a step line: (value, fraction of samples <= value)."""
    ordered = sorted(values)
    n = len(ordered)
    pts: list[tuple[float, float]] = []
    for i, v in enumerate(ordered):
        pts += [(v, i / n), (v, (i + 1) / n)]
    return pts


def latency_cdf(title: str, series: dict[str, list[float]], limits: dict[str, float]) -> str:
    """Latency CDF, one line per source -> target; SLO latency limits as vertical lines."""
    chart = Chart(title, "latency (ms)", "fraction of samples", y_range=(0.0, 1.0),
                  series=[Series(label, cdf_points(v)) for label, v in series.items() if v],
                  marks=[("x", v, label) for label, v in limits.items()])
    return render(chart)


def throughput_over_time(title: str, series: dict[str, list[float]], interval_s: dict[str, float],
                         minimum_bps: float | None) -> str:
    """Throughput per interval in Mbit/s, one line per source -> target; the SLO minimum as a line."""
    chart = Chart(title, "time (s)", "throughput (Mbit/s)",
                  series=[Series(label, [((i + 1) * interval_s.get(label, 1.0), v / 1e6) for i, v in enumerate(vals)])
                          for label, vals in series.items() if vals],
                  marks=[("y", minimum_bps / 1e6, f"SLO min {minimum_bps / 1e6:g} Mbit/s")] if minimum_bps else [])
    return render(chart)
