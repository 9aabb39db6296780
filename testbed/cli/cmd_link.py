"""`testbed link set|show`: change link impairments of a running testbed, from any shell."""
from __future__ import annotations

import click
from rich.table import Table

from testbed.cli import render
from testbed.cli.runs import pick_run
from testbed.impair import Impairment


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

    m = pick_run(run_id)
    out = set_link(m, link_ref, list(settings), direction)
    if "state" in out:
        render.console.print(f"{out['link']}: {out['state']}")
        return
    for d in ("a_to_b", "b_to_a"):
        render.console.print(f"{out['link']} {d}: {_describe(out[d])}")


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
