"""`testbed graph FILE`: draw a topology without building it (sites, kinds, links, slices)."""
from __future__ import annotations

from pathlib import Path

import click

from testbed.cli.options import writable


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to draw: .svg, .png or .dot (default: NAME.svg, NAME from the file).")
    def graph(topology: Path, output: Path | None) -> None:
        """Draw a topology file as SVG or PNG (Graphviz): nothing is built, no root needed."""
        from testbed.cli import render
        from testbed.report import graph as drawing
        from testbed.report.network import describe
        from testbed.runner import load

        topo = load(topology)  # a bad file is reported (exit 2) like `validate` does
        out = writable(output or Path(f"{topo.name}.svg"))
        d = describe(topo)
        drawing.write(d["network"], d["slices"], out, title=f"{topo.name}: {topo.description}" if topo.description else topo.name)
        render.console.print(f"[green]✓[/] {out}: {len(topo.sites)} sites, {len(topo.nodes)} nodes, "
                             f"{len(topo.links)} links, {len(topo.slices)} slices")
