"""`testbed flows` and `testbed slice grant|revoke`: see and change slice enforcement while running."""
from __future__ import annotations

import json
import re

import click
from rich.markup import escape
from rich.table import Table

from testbed.cli import render
from testbed.cli.runs import pick_run
from testbed.errors import TestbedError, UsageError

run_opt = click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed (see `testbed status`).")


def _plan(m) -> dict:
    try:
        return json.loads((m.dir / "plan.json").read_text())
    except (OSError, ValueError) as exc:
        raise TestbedError(f"run {m.run_id} has no readable controller plan ({exc})") from exc


@click.command()
@run_opt
@click.option("--slice", "slice_name", help="Only the rules of this slice ('-' = rules common to all slices).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.argument("switch", required=False)
def flows(run_id: str | None, slice_name: str | None, as_json: bool, switch: str | None) -> None:
    """Installed OpenFlow rules per switch, grouped by slice, with packet/byte counters.

    MACs, IPs and host ports are shown as node names. Example: testbed flows clinic-sw --slice clinical
    """
    from testbed.engine.ovs import dump_flows, meter_stats
    from testbed.slicing.inspect import label, parse_dump_flows

    m = pick_run(run_id)
    plan = _plan(m)
    switches = {n: rec for n, rec in m.nodes.items() if rec.dpid is not None}
    if switch and switch not in switches:
        raise UsageError(f"run {m.run_id} has no switch {switch!r}; switches: {', '.join(sorted(switches))}")
    doc = {}
    for name, rec in sorted(switches.items()):
        if switch and name != switch:
            continue
        rows = label(parse_dump_flows(dump_flows(rec.internal)), plan, rec.dpid)
        if slice_name:
            rows = [r for r in rows if r.slice == slice_name]
        meters = meter_stats(rec.internal)
        doc[name] = {"bridge": rec.internal, "dpid": rec.dpid, "flows": [r.__dict__ for r in rows],
                     "meters": meters}
        if as_json:
            continue
        mid_slice = {s["meter_id"]: n for n, s in plan.get("slices", {}).items() if s.get("meter_id")}
        t = Table(title=f"{name} ({rec.internal}, dpid {rec.dpid}): {len(rows)} rules", title_justify="left")
        for col in ("slice", "kind", "table", "prio", "match", "actions", "packets", "bytes"):
            t.add_column(col, justify="right" if col in ("table", "prio", "packets", "bytes") else "left",
                         overflow="fold")
        order = {n: s["id"] for n, s in plan.get("slices", {}).items()}
        rows.sort(key=lambda r: (order.get(r.slice, 999), r.table, -r.priority, r.kind, r.match))
        last = None
        for r in rows:
            t.add_row(escape(r.slice) if r.slice != last else "", r.kind, str(r.table), str(r.priority),
                      escape(r.match) or "*", escape(r.actions) or "drop", str(r.packets), str(r.bytes),
                      end_section=False)
            last = r.slice
        render.console.print(t)
        for mid, st in sorted(meters.items()):
            sl = mid_slice.get(mid, "?")
            if slice_name and sl != slice_name:
                continue
            render.console.print(f"  meter {mid} ({sl}): rate {st.get('rate_kbps', '?')} kbit/s, "
                                 f"{st.get('packets', '?')} packets in, {st.get('dropped', '?')} dropped by the band")
    if as_json:
        click.echo(json.dumps(doc, indent=1))
    elif plan.get("conntrack"):
        _conntrack_summary(plan, slice_name)


def _conntrack_summary(plan: dict, slice_name: str | None) -> None:
    """One line: the run's tracked connections per slice (the slice is the connection's ct_mark)."""
    from testbed.engine.ovs import dump_conntrack
    from testbed.slicing.conntrack import parse_conntrack

    zone = plan["conntrack"]["zone"]
    names = {s["id"]: n for n, s in plan.get("slices", {}).items()}
    counts: dict[str, int] = {}
    for c in parse_conntrack(dump_conntrack(zone)):
        name = names.get(c.mark, f"mark {c.mark}")
        if not slice_name or name == slice_name:
            counts[name] = counts.get(name, 0) + 1
    per = ", ".join(f"{escape(n)}: {k}" for n, k in sorted(counts.items()))
    render.console.print(f"connection tracker, zone {zone}: {sum(counts.values())} tracked connection(s)"
                         + (f" ({per})" if per else ""))


@click.group("slice")
def slice_group() -> None:
    """Grant or revoke slice membership of a running testbed (takes effect without a restart)."""


MAX_TIMEOUT_S = 3600.0


def _timeout(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """--timeout: click's FLOAT takes nan and inf, and waiting for nan seconds never ends."""
    if not 0 < value <= MAX_TIMEOUT_S:  # False for nan too
        raise click.BadParameter(f"must be seconds from more than 0 to {MAX_TIMEOUT_S:g}, got {value!r}")
    return value


def _check_names(slice_name: str, member: str) -> None:
    """A SLICE or MEMBER no topology could name is a usage error before any run is looked at."""
    from testbed.topology.model import NAME_PATTERN

    for what, name in (("SLICE", slice_name), ("MEMBER", member)):
        if not re.fullmatch(NAME_PATTERN, name):
            raise UsageError(f"{what} {name[:80]!r} is not a name a topology can hold "
                             "(lower-case letters, digits and '-', at most 63)")


def _change(action: str, run_id: str | None, slice_name: str, member: str, timeout: float) -> None:
    from testbed.engine.slices import change_membership

    _check_names(slice_name, member)
    m = pick_run(run_id)
    ch = change_membership(m, action, slice_name, member, timeout)
    verb = "granted" if action == "grant" else "revoked"
    render.console.print(f"[green]{verb}[/]: {member} in slice {slice_name} (run {m.run_id}, plan generation "
                         f"{ch.generation}, applied on every switch in {ch.apply_s:.2f}s; "
                         f"rules +{ch.rules_added} -{ch.rules_removed})")
    if action == "revoke":
        render.console.print(f"  ended {ch.connections_cut} live connection(s) {member} had opened in {slice_name}")
    for sign, grants in (("+", ch.grants_added), ("-", ch.grants_removed)):
        for sl, src, dst, proto, port, svc in grants:
            render.console.print(f"  {sign} {src} -> {dst} {svc} ({proto}/{port}) [{sl}]")
    if not ch.grants_added and not ch.grants_removed:
        render.console.print("  (no change in what is allowed)")


@slice_group.command("grant")
@run_opt
@click.option("--timeout", default=30.0, show_default=True, callback=_timeout,
              help="Seconds to wait for the switches.")
@click.argument("slice_name", metavar="SLICE")
@click.argument("member")
def grant(run_id: str | None, timeout: float, slice_name: str, member: str) -> None:
    """Admit MEMBER (a host) to SLICE: it may reach the slice's services from now on."""
    _change("grant", run_id, slice_name, member, timeout)


@slice_group.command("revoke")
@run_opt
@click.option("--timeout", default=30.0, show_default=True, callback=_timeout,
              help="Seconds to wait for the switches.")
@click.argument("slice_name", metavar="SLICE")
@click.argument("member")
def revoke(run_id: str | None, timeout: float, slice_name: str, member: str) -> None:
    """Remove MEMBER from SLICE: its flows in the slice are dropped from now on, and the connections
    it opened in the slice end at once (their connection-tracking entries are deleted)."""
    _change("revoke", run_id, slice_name, member, timeout)


def register(cli: click.Group) -> None:
    cli.add_command(flows)
    cli.add_command(slice_group)
