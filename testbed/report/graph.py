"""Draw a network description (network.describe) with Graphviz: sites as boxes, kinds as shapes,
slice members filled with their slice's colour.

Graphviz is what the field uses for this (Containerlab's `graph --dot`, ns-3 and
Mininet tooling export DOT): it lays out graphs of hundreds of nodes well, and
its SVG embeds directly in the HTML report. The DOT source is built with the
`graphviz` package (quoting and escaping done right); the `dot` program of the
Debian `graphviz` package renders it.
"""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import graphviz

from testbed.errors import TestbedError

# kind -> (shape, fill colour): shapes tell kinds apart in black and white too.
KIND_STYLE: dict[str, tuple[str, str]] = {
    "switch": ("box", "#d9dde3"),
    "server": ("cylinder", "#ffffff"),
    "vdi": ("box3d", "#ffffff"),
    "mec": ("component", "#ffffff"),
    "upf": ("hexagon", "#ffffff"),
    "gnb": ("house", "#ffffff"),
    "ue": ("ellipse", "#ffffff"),
    "host": ("ellipse", "#ffffff"),
}
DEFAULT_STYLE = ("ellipse", "#ffffff")
# Distinct, colour-blind-friendly hues (Okabe-Ito, then Tableau): slice i gets SLICE_COLOURS[i % n].
SLICE_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#f0e442", "#8c564b",
                 "#7f7f7f", "#17becf")
SITE_FILL = {"datacentre": "#eef3fb", "branch-campus": "#f1f8ee", "county-hospital": "#fbf4ea",
             "community-health-centre": "#f7f0fa", "clinic": "#fdf0f0"}
# fdp (force-directed, with clusters) lays a hub-and-spoke alliance out round its aggregation switches;
# dot's ranks made it a strip 30 sites long. Edges routed around nodes cost seconds on large graphs.
CURVED_EDGES_MAX = 200
LABELLED_LINKS_MAX = 40  # above this many links, link settings go to tooltips only (labels would pile up)
FORMATS = ("svg", "png", "dot")


def slice_colours(slices: list[dict[str, Any]]) -> dict[str, str]:
    """slice name -> colour, the same in the drawing, the plots and the tables of a report."""
    return {s["name"]: SLICE_COLOURS[i % len(SLICE_COLOURS)] for i, s in enumerate(slices)}


def _pastel(hex_colour: str, keep: float = 0.35) -> str:
    """The colour mixed with white: a fill light enough for black text."""
    rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * keep):02x}" for c in rgb)


def _link_text(ln: dict[str, Any]) -> str:
    parts = []
    if ln.get("bw_bps"):
        parts.append(f"{ln['bw_bps'] / 1e6:g} Mbit/s")
    if ln.get("delay_ms"):
        parts.append(f"{ln['delay_ms']:g} ms")
    if ln.get("loss_pct"):
        parts.append(f"{ln['loss_pct']:g}% loss")
    return ", ".join(parts)


def _node_attrs(n: dict[str, Any], colours: dict[str, str]) -> dict[str, str]:
    shape, fill = KIND_STYLE.get(n["kind"], DEFAULT_STYLE)
    tip = f"{n['name']} ({n['kind']})" + (f" {n['ip']}" if n.get("ip") else "")
    if n.get("services"):
        tip += "\nservices: " + ", ".join(n["services"])
    attrs = {"shape": shape, "style": "filled", "fillcolor": fill, "tooltip": tip, "class": f"kind-{n['kind']}"}
    member = [colours[s] for s in n.get("slices", []) if s in colours]
    if member:
        tip += "\nslices: " + ", ".join(n["slices"])
        # One slice: filled with its colour; several: a wedge of each (ellipses) or stripes (boxes).
        fills = ":".join(_pastel(c) for c in member)
        multi = "wedged" if shape == "ellipse" else "striped" if shape == "box" else "filled"
        attrs.update({"fillcolor": fills if multi != "filled" else _pastel(member[0]),
                      "style": multi if len(member) > 1 else "filled", "color": member[0], "penwidth": "2.5",
                      "tooltip": tip})
    return attrs


def to_dot(network: dict[str, Any], slices: list[dict[str, Any]], title: str = "") -> graphviz.Graph:
    """The DOT graph: a cluster per site, site-less nodes (the operator's aggregation) outside,
    a legend cluster for the slices."""
    colours = slice_colours(slices)
    curved = len(network.get("nodes", [])) <= CURVED_EDGES_MAX
    g = graphviz.Graph("topology", engine="fdp",
                       graph_attr={"layout": "fdp", "splines": "true" if curved else "line", "fontname": "DejaVu Sans",
                                   "fontsize": "14", "label": title, "labelloc": "t"},
                       node_attr={"fontname": "DejaVu Sans", "fontsize": "10", "height": "0.35"},
                       edge_attr={"color": "#7a8290", "fontname": "DejaVu Sans", "fontsize": "8"})
    sites = {s["name"]: s for s in network.get("sites", [])}
    by_site: dict[str | None, list[dict[str, Any]]] = {}
    for n in network.get("nodes", []):
        by_site.setdefault(n.get("site") if n.get("site") in sites else None, []).append(n)
    for site, nodes in by_site.items():
        if site is None:
            for n in nodes:
                g.node(n["name"], **_node_attrs(n, colours))
            continue
        with g.subgraph(name=f"cluster_{site}") as c:
            kind = sites[site]["type"]
            c.attr(label=f"{site} ({kind})", style="rounded,filled", fillcolor=SITE_FILL.get(kind, "#f5f5f5"),
                   color="#9aa3ad", tooltip=sites[site].get("description") or site)
            for n in nodes:
                c.node(n["name"], **_node_attrs(n, colours))
    labelled = len(network.get("links", [])) <= LABELLED_LINKS_MAX
    for ln in network.get("links", []):
        text = _link_text(ln)
        g.edge(ln["a"], ln["b"], label=text if labelled else "", tooltip=f"{ln['a']} - {ln['b']} {text}".strip())
    _legend(g, network, slices, colours)
    return g


def _legend(g: graphviz.Graph, network: dict[str, Any], slices: list[dict[str, Any]],
            colours: dict[str, str]) -> None:
    """What the colours (slices) and shapes (kinds present) mean: one table node, so that the
    force-directed layout keeps it together."""
    rows = [f'<TR><TD BGCOLOR="{_pastel(colours[s["name"]])}" COLOR="{colours[s["name"]]}" BORDER="2">'
            f'slice <B>{escape(s["name"])}</B> · SST {s["sst"]} · 5QI {s["fiveqi"]}</TD></TR>' for s in slices]
    kinds = dict.fromkeys(n["kind"] for n in network.get("nodes", []))
    shapes = ", ".join(f"{escape(k)}: {KIND_STYLE.get(k, DEFAULT_STYLE)[0]}" for k in kinds)
    rows.append(f'<TR><TD BORDER="0"><FONT POINT-SIZE="9">{shapes}</FONT></TD></TR>')
    g.node("legend", label=f'<<TABLE BORDER="0" CELLSPACING="3">{"".join(rows)}</TABLE>>', shape="box",
           style="rounded", color="#9aa3ad", tooltip="legend")


def render(network: dict[str, Any], slices: list[dict[str, Any]], fmt: str = "svg", title: str = "") -> bytes:
    """The drawing as SVG, PNG or DOT bytes. Raises TestbedError when Graphviz's `dot` is missing."""
    g = to_dot(network, slices, title)
    if fmt == "dot":
        return g.source.encode()
    try:
        return g.pipe(format=fmt, engine="dot")
    except graphviz.ExecutableNotFound:
        raise TestbedError("Graphviz's `dot` is not installed (apt-get install graphviz; scripts/setup.sh "
                           "installs it)") from None
    except graphviz.CalledProcessError as exc:
        raise TestbedError(f"dot failed: {(exc.stderr or b'').decode(errors='replace')[-500:]}") from None


def write(network: dict[str, Any], slices: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Write the drawing to `path`; its suffix (.svg, .png, .dot) chooses the format."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise TestbedError(f"cannot draw to {path.name}: the file name must end in "
                           + ", ".join(f".{f}" for f in FORMATS))
    path.write_bytes(render(network, slices, fmt, title))
    return path
