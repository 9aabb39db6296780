"""`testbed verify`: prove slice isolation over the flow tables the switches hold, every header at once.

Reads every switch of a running testbed back, solves which headers can get from
each host port to each other one (BDDs, with connection tracking), compares that
with the slice policy, and replays every leak and false block as a real packet.
Exit 1 on any finding, 0 when verified clean, 2 on bad usage.
"""
from __future__ import annotations

import json
import sys

import click
from rich.markup import escape
from rich.table import Table

from testbed.cli import render
from testbed.cli.cmd_slicing import run_opt
from testbed.cli.runs import attach, pick_run


@click.command()
@run_opt
@click.option("--no-replay", is_flag=True, help="Only the proof: do not replay the findings as packets.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the report's verify section).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def verify(run_id: str | None, no_replay: bool, as_json: bool, quiet: bool) -> None:
    """Prove isolation on a running testbed: every ordered pair of host ports, every header, from the
    rules read back from the switches; each leak or false block replayed on the wire.

    Example: testbed up -d topologies/minimal.yaml && testbed verify"""
    from testbed.checks.verify import verify as run_verify

    m = pick_run(run_id)
    tb = attach(m)
    with render.EventRenderer(quiet or as_json) as ev:
        v = run_verify(tb, ev, replay_findings=not no_replay)
    doc = v.summary()
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        sys.exit(0 if v.proof and not v.findings else 1)
    if v.proof is None:
        render.console.print(f"[red]cannot verify[/]: {escape(v.error)}")
        sys.exit(1)
    if v.findings:
        t = Table(title=f"run {m.run_id}: findings", title_justify="left")
        for col in ("kind", "from", "to", "header", "replay"):
            t.add_column(col, overflow="fold")
        for f in v.findings[:50]:
            t.add_row("[red]LEAK[/]" if f.kind == "leak" else "[yellow]FALSE BLOCK[/]", escape(f.src[:60]),
                      escape(f.dst[:60]), escape(f.describe()) + (" (after its opener)" if f.opener else ""),
                      escape(f.replay or "-"))
        render.console.print(t)
    n_leak, n_fb = len(v.proof.comparison.leaks), len(v.proof.comparison.false_blocks)
    colour = "green" if not v.findings else "red"
    render.console.print(
        f"[{colour}]verified: {n_leak} leaks, {n_fb} false blocks[/] over {doc['pairs']} ordered pairs of "
        f"{doc['host_ports']} host ports, every header (2^{doc['header_bits']} each); {doc['rules']} rules on "
        f"{doc['switches']} switches in {doc['seconds']:.1f}s"
        + (f"; replayed {v.replayed}: {v.confirmed} confirmed, {v.refuted} refuted" if v.replayed else ""))
    sys.exit(0 if not v.findings else 1)


def register(cli: click.Group) -> None:
    cli.add_command(verify)
