"""`testbed fault inject`: a fault on a running testbed, from any shell, restored after its duration."""
from __future__ import annotations

import time
from types import SimpleNamespace

import click

from testbed.cli import render
from testbed.cli.runs import pick_run
from testbed.errors import UsageError

KINDS = ("link-down", "node-down", "impair")


def _seconds(ctx, param, value: str) -> float:
    from testbed.units import parse_duration_ms

    try:
        s = parse_duration_ms(value) / 1000.0
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not 0 < s <= 3600:
        raise click.BadParameter("between 1ms and 1h")
    return s


@click.group("fault")
def fault_group() -> None:
    """Inject faults into a running testbed (the file's `faults:` run as drills in `testbed run`)."""


@fault_group.command("inject")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("target")
@click.option("--for", "duration", default="5s", show_default=True, callback=_seconds,
              help="How long until it is restored (the command waits, then restores).")
@click.option("--set", "settings", multiple=True, metavar="K=V",
              help="impair: the link's settings while it lasts (repeat: --set delay=50ms --set loss=2%).")
@click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed (see `testbed status`).")
def inject(kind: str, target: str, duration: float, settings: tuple[str, ...], run_id: str | None) -> None:
    """Cut a link (`A:B`), lose a node (NODE: its links go down) or degrade a link, then restore it.

    Examples: testbed fault inject link-down shaoshan-sw:agg-county --for 10s;
    testbed fault inject impair dr-tablet-01:clinic-sw --set delay=50ms --set loss=2% --for 30s
    """
    from testbed.checks.faults import Drill, inject as do_inject, restore as do_restore
    from testbed.engine import links
    from testbed.ran.network import prepare
    from testbed.runner import load
    from testbed.topology.model import Fault

    if kind == "impair" and not settings:
        raise UsageError("impair needs the link's settings: --set delay=50ms (repeat --set for more)")
    m = pick_run(run_id)
    topo, _ = prepare(load(m.topology), m.run_id)
    if kind == "node-down" and target not in {n.name for n in topo.nodes}:
        raise UsageError(f"no node {target!r} in {m.topology}")
    tb = SimpleNamespace(topo=topo, manifest=m, controller=None,
                         set_link=lambda ref, items: links.set_link(m, ref, items))
    drill = Drill(Fault(name="cli", type=kind, target=target, set=list(settings)), [], [])
    t0 = time.monotonic()
    do_inject(tb, drill)
    render.console.print(f"{kind} {target}: injected; restoring in {duration:g} s (Ctrl-C restores now)")
    try:
        time.sleep(duration)
    except KeyboardInterrupt:
        pass
    finally:
        do_restore(tb, drill)
    render.console.print(f"{kind} {target}: restored after {time.monotonic() - t0:.1f} s")


def register(cli: click.Group) -> None:
    cli.add_command(fault_group)
