"""`testbed fault inject`: a fault on a running testbed, from any shell, restored after its duration."""
from __future__ import annotations

import time
from types import SimpleNamespace

import click

from testbed.cli import render
from testbed.cli.runs import node_handle, pick_run
from testbed.errors import UsageError
from testbed.units import parse_duration_ms, parse_rate

KINDS = ("link-down", "node-down", "impair", "congestion")


def _bounded(parse, low: float, high: float, why: str):
    """A click callback: parse the value (None passes), refuse it outside (low, high] with `why`."""
    def callback(ctx, param, value: str | None):
        if value is None:
            return None
        try:
            v = parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        if not low < v <= high:
            raise click.BadParameter(why)
        return v
    return callback


_seconds = _bounded(lambda text: parse_duration_ms(text) / 1000.0, 0, 3600, "between 1ms and 1h")
_rate = _bounded(parse_rate, 0, 1_000_000_000, "cross-traffic is bounded: at most 1Gbit")


@click.group("fault")
def fault_group() -> None:
    """Inject faults into a running testbed (the file's `faults:` run as drills in `testbed run`)."""


@fault_group.command("inject")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("target", required=False)
@click.option("--for", "duration", default="5s", show_default=True, callback=_seconds,
              help="How long until it is restored (the command waits, then restores).")
@click.option("--set", "settings", multiple=True, metavar="K=V",
              help="impair: the link's settings while it lasts (repeat: --set delay=50ms --set loss=2%).")
@click.option("--from", "src", metavar="NODE", help="congestion: the host sending the cross-traffic (iperf3 TCP).")
@click.option("--to", "dst", metavar="NODE|SERVICE", help="congestion: the host or service offering iperf it goes to.")
@click.option("--rate", callback=_rate, metavar="RATE", help="congestion: its rate, e.g. 60Mbit (at most 1Gbit).")
@click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed (see `testbed status`).")
def inject(kind: str, target: str | None, duration: float, settings: tuple[str, ...], src: str | None,
           dst: str | None, rate: int | None, run_id: str | None) -> None:
    """Cut a link (`A:B`), lose a node (NODE: its links go down), degrade a link, or load a path with
    bounded cross-traffic (congestion, --from/--to/--rate, at most 60 s), then restore it.

    Examples: testbed fault inject link-down shaoshan-sw:agg-county --for 10s;
    testbed fault inject impair dr-tablet-01:clinic-sw --set delay=50ms --set loss=2% --for 30s;
    testbed fault inject congestion --from dr-tablet-02 --to pacs --rate 60Mbit --for 10s
    """
    from testbed.checks.faults import Drill, inject as do_inject, restore as do_restore
    from testbed.engine import links
    from testbed.ran.network import prepare
    from testbed.runner import load
    from testbed.topology.model import Fault

    if kind == "impair" and not settings:
        raise UsageError("impair needs the link's settings: --set delay=50ms (repeat --set for more)")
    if (kind == "congestion") != (target is None):
        raise UsageError("congestion takes --from, --to and --rate, no TARGET" if kind == "congestion"
                         else f"{kind} needs a TARGET")
    if kind == "congestion" and (src is None or dst is None or rate is None or duration > 60):
        raise UsageError("congestion needs --from NODE --to NODE|SERVICE --rate RATE, and --for at most 60s")
    m = pick_run(run_id)
    topo, ran = prepare(load(m.topology), m.run_id)
    if kind == "node-down" and target not in {n.name for n in topo.nodes}:
        raise UsageError(f"no node {target!r} in {m.topology}")
    tb = SimpleNamespace(topo=topo, manifest=m, controller=None, node=lambda name: node_handle(m, name),
                         set_link=lambda ref, items: links.set_link(m, ref, items))
    drill = Drill(Fault(name="cli", type=kind, target=target, set=list(settings), src=src, dst=dst, rate=rate,
                        duration=duration * 1000), [], [])
    target = target or f"{src} -> {dst} at {rate / 1e6:g} Mbit/s"
    follower = _follower(m, topo, ran, drill.fault)
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
    if follower is not None:
        _follow_home(follower)
    if (cross := drill.before.get("cross")) is not None:
        render.console.print(f"cross-traffic to {cross['dst']}: sent {cross.get('sent_bps', 0) / 1e6:.1f} Mbit/s, "
                             f"received {cross.get('received_bps', 0) / 1e6:.1f} Mbit/s"
                             + (f" [red]{cross['error']}[/]" if cross.get("error") else ""))


def _follower(m, topo, ran, fault):
    """node-down on a MEC UPF: the switches and servers follow the core's moves of its sessions (started)."""
    from testbed.checks.upffallback import expected
    from testbed.engine.relocate import Follower

    if not expected(SimpleNamespace(ran=ran), fault):
        return None
    addresses = {n: rec.ip for n, rec in m.nodes.items() if rec.ip}
    return Follower(m, topo, ran, lambda node, argv: node_handle(m, node).run(argv), addresses).start()


def _follow_home(follower, wait_s: float = 10.0) -> None:
    """After the restore: keep following until the sessions are home (at most `wait_s`), then say what moved."""
    from testbed.engine.ran import core_anchors

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and core_anchors(follower.plan, follower.manifest.dir):
        time.sleep(0.2)
    time.sleep(2 * follower.interval)
    follower.stop()
    for change in follower.applied:
        what = (f"{len(change['moved'])} session(s) to the fallback UPF" if change["moved"] else "") + (
            f"{', ' if change['moved'] else ''}{len(change['back'])} session(s) home" if change["back"] else "")
        render.console.print(f"the network followed the core: {what} (rules and routes in {change['rules_s'] + change['routes_s']:.2f} s)")
    for err in follower.errors:
        render.console.print(f"[red]following the core: {err}[/]")


def register(cli: click.Group) -> None:
    cli.add_command(fault_group)
