"""`testbed link set|show`: change link impairments of a running testbed, from any shell."""
from __future__ import annotations

import click
from rich.table import Table

from testbed.cli import render
from testbed.cli.runs import pick_run
from testbed.errors import UsageError
from testbed.impair import Impairment, parse_assignments


def _describe(d: dict) -> str:
    return Impairment.from_dict(d).describe()


@click.group("link")
def link() -> None:
    """Show or change link impairments (delay, jitter, loss, rate, up/down) while running."""


@link.command("set")
@click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed.")
@click.option("--direction", type=click.Choice(["both", "a_to_b", "b_to_a"]), default="both", show_default=True)
@click.argument("link_ref", metavar="NODE-A:NODE-B")
@click.argument("settings", nargs=-1, required=True)
def link_set(run_id: str | None, direction: str, link_ref: str, settings: tuple[str, ...]) -> None:
    """Change a link now: testbed link set dr-tablet-01:clinic-sw delay=20ms jitter=2ms loss=1%

    Keys: delay jitter dist loss model burst dup reorder gap rate limit, or the words down / up.
    """
    from testbed.engine.links import set_link

    check_settings(link_ref, settings)  # bad arguments fail here, before any run is looked at
    m = pick_run(run_id)
    out = set_link(m, link_ref, list(settings), direction)
    if "state" in out:
        render.console.print(f"{out['link']}: {out['state']}")
        return
    for d in ("a_to_b", "b_to_a"):
        render.console.print(f"{out['link']} {d}: {_describe(out[d])}")


def check_settings(link_ref: str, settings: tuple[str, ...]) -> None:
    """UsageError (exit 2) for a malformed NODE-A:NODE-B or settings no link could take.

    Values are checked against a link with no impairment; what depends on the link's own
    settings (gilbert loss below 100 %) is checked again when it is applied."""
    a, sep, b = link_ref.partition(":")
    if not sep or not a or not b or ":" in b:
        raise UsageError(f"expected NODE-A:NODE-B, got {link_ref!r}")
    try:
        updates = parse_assignments(list(settings))
        Impairment().with_updates(**updates)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not updates:
        raise UsageError("nothing to change: give settings like delay=20ms loss=1%, or down / up")


@link.command("veth")
@click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed.")
@click.argument("link_ref", metavar="NODE-A:NODE-B")
def link_veth(run_id: str | None, link_ref: str) -> None:
    """Make a link between two switches a veth pair, to capture on: testbed link veth agg-city:dc-edge

    Such links are Open vSwitch patch ports, which have no interface tcpdump can open; the link keeps
    passing frames (on the same OpenFlow ports). Prints its switch-side interfaces."""
    from testbed.engine.links import as_veth

    check_settings(link_ref, ("up",))
    key, ends = as_veth(pick_run(run_id), link_ref)
    render.console.print(f"{key}: veth pair, switch-side interfaces {' '.join(ends)}")


@link.command("show")
@click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed.")
def link_show(run_id: str | None) -> None:
    """List the changeable links of a run and what each direction does now."""
    m = pick_run(run_id)
    render.console.print(links_table(m))


def links_table(m) -> Table:
    t = Table(title=f"links of run {m.run_id} ({m.impairment_backend})")
    for col in ("link", "a→b", "b→a", "backend"):
        t.add_column(col)
    for key, rec in sorted(m.links.items()):
        t.add_row(key, _describe(rec["a_to_b"]), _describe(rec["b_to_a"]), rec["backend"])
    return t


def register(cli: click.Group) -> None:
    cli.add_command(link)
