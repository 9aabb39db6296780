"""Topology drawings: DOT structure (no tools needed), then SVG/PNG through Graphviz's dot."""
from __future__ import annotations

import html
import re

from testbed.report import graph
from testbed.report.network import describe


def test_dot_has_a_cluster_per_site_and_slice_colours(small) -> None:
    d = describe(small)
    src = graph.to_dot(d["network"], d["slices"], "minimal").source
    assert "subgraph cluster_xch-dc" in src.replace('"', "") and "clinic-1 (clinic)" in src
    colours = graph.slice_colours(d["slices"])
    tablet = next(ln for ln in src.splitlines() if ln.strip().startswith('"dr-tablet-01"'))
    assert f'color="{colours["clinical"]}"' in tablet and "shape=ellipse" in tablet
    assert "shape=cylinder" in next(ln for ln in src.splitlines() if ln.strip().startswith("emr"))
    assert re.search(r'"clinic-sw" -- core \[label="100 Mbit/s"', src)
    assert "slice <B>kiosk</B>" in src  # legend


def test_members_of_two_slices_show_both(reference) -> None:
    d = describe(reference)
    src = graph.to_dot(d["network"], d["slices"]).source
    tablet = next(ln for ln in src.splitlines() if ln.strip().startswith('"dr-tablet-01"'))
    assert "style=wedged" in tablet and tablet.count("#") >= 3  # two fills and an outline
    assert 'label=""' in src  # 100+ links: settings in tooltips, not labels


def test_svg_and_png(small, dot, tmp_path) -> None:
    d = describe(small)
    svg = html.unescape(graph.write(d["network"], d["slices"], tmp_path / "m.svg", "minimal").read_text())
    assert "<svg" in svg and "dr-tablet-01" in svg and "clinic-1 (clinic)" in svg
    png = graph.write(d["network"], d["slices"], tmp_path / "m.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
