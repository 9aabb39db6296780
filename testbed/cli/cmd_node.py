"""`testbed node set|show`: CPU and memory limits of a running testbed's docker nodes."""
from __future__ import annotations

import click
from rich.table import Table

from testbed.cli import render
from testbed.cli.runs import pick_run
from testbed.errors import UsageError


def _mem(b: int | None) -> str:
    if not b:
        return "unlimited"
    for unit, size in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if b >= size and b % size == 0:
            return f"{b // size}{unit}"
    return f"{b} B"


def _cpus(c: float | None) -> str:
    return "unlimited" if not c else f"{c:g}"


@click.group("node")
def node() -> None:
    """Show or change docker nodes' resource limits while running."""


@node.command("set")
@click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed.")
@click.argument("name")
@click.argument("settings", nargs=-1, required=True)
def node_set(run_id: str | None, name: str, settings: tuple[str, ...]) -> None:
    """Change a docker node's limits now: testbed node set vdi-01 cpus=2 memory=4g"""
    from testbed.engine import runtimes
    from testbed.engine.docker_node import parse_limits

    parse_limits(list(settings))  # bad settings fail here (UsageError), before any run is looked at
    m = pick_run(run_id)
    rec = m.nodes.get(name)
    if rec is None:
        raise UsageError(f"run {m.run_id} has no node {name!r}")
    out = runtimes.new(rec.runtime).set_limits(rec, list(settings))
    render.console.print(f"{name}: cpus {_cpus(out['cpus'])}, memory {_mem(out['memory'])}")


@node.command("show")
@click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed.")
def node_show(run_id: str | None) -> None:
    """List a run's docker nodes with their container and current limits."""
    from testbed.engine import runtimes

    m = pick_run(run_id)
    t = Table(title=f"docker nodes of run {m.run_id}")
    for col in ("node", "container", "cpus", "memory"):
        t.add_column(col)
    for rec in sorted(m.nodes.values(), key=lambda r: r.name):
        lim = runtimes.new(rec.runtime).limits(rec) if rec.dpid is None else None
        if lim is not None:
            t.add_row(rec.name, rec.container, _cpus(lim["cpus"]), _mem(lim["memory"]))
    render.console.print(t)


def register(cli: click.Group) -> None:
    cli.add_command(node)
