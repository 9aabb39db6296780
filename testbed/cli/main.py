"""`testbed` — build, check and tear down emulated 5G medical alliance networks.

Each verb is a few lines over the library; errors derive from TestbedError and
map to exit codes (2 bad input, 3 platform, 1 failed run; a run stopped by a signal:
128 + its number, 130 for Ctrl-C, 143 for SIGTERM). `--debug` shows tracebacks.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from testbed.cli import render
from testbed.cli.options import app_path, checked_report_dir, writable
from testbed.cli.runs import pick_run, stop_run
from testbed.cli.signals import Interrupted, signals_ignored, signals_raise
from testbed.errors import TestbedError, TopologyError, UsageError


class TestbedGroup(click.Group):
    """Turns TestbedError into a message and its exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TopologyError as exc:
            render.problems(exc.problems)
            ctx.exit(exc.exit_code)
        except Interrupted as exc:  # a stop signal outside a run's own handling (while loading, building...)
            if ctx.obj and ctx.obj.get("debug"):
                raise
            render.err_console.print(f"[red]error:[/] {exc}")
            ctx.exit(exc.exit_code)
        except TestbedError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            render.err_console.print(f"[red]error:[/] {exc}")
            ctx.exit(exc.exit_code)


topology_arg = click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
run_opt = click.option("--run", "run_id", metavar="RUN_ID", help="Which running testbed (see `testbed status`).")


@click.group(cls=TestbedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Emulate a 5G medical alliance network and prove it isolated, fast and available."""
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("topologies", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--expand", is_flag=True, help="Print each file with its site templates and ranges expanded "
                                             "(YAML that loads to the same topology) instead of a summary.")
def validate(topologies: tuple[Path, ...], expand: bool) -> None:
    """Check topology files without building anything (exit 2 on any problem)."""
    from testbed.ran.network import summary as ran_summary
    from testbed.runner import load
    from testbed.topology.expand import to_yaml

    bad = 0
    for path in topologies:
        try:
            t = load(path)
        except TopologyError as exc:
            render.problems(exc.problems)
            bad += 1
            continue
        if expand:
            click.echo(to_yaml(t._source.expanded), nl=False)
            continue
        ran_text, ran_warnings = ran_summary(t)
        render.console.print(f"[green]✓[/] {path}: {len(t.sites)} sites, {len(t.nodes)} nodes "
                             f"({len(t.switches)} switches), {len(t.links)} links, {len(t.slices)} slices; "
                             f"5G: {ran_text}")
        for w in ran_warnings:
            render.console.print(f"[yellow]! {path}: {w}[/]")
    if bad:
        sys.exit(2)


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
def schema(output: Path | None) -> None:
    """Print the topology file's JSON Schema (generated from the model)."""
    from testbed.topology.schema import schema_json
    from testbed.workloads import extend_schema

    if output:
        writable(output)
    text = schema_json(extend_schema)
    if output:
        output.write_text(text)
    else:
        click.echo(text)


@cli.command()
def doctor() -> None:
    """Preflight: what this machine offers and which paths the testbed will take."""
    from rich.table import Table

    from testbed import platform

    rep = platform.detect()
    t = Table(title="testbed doctor")
    for col in ("check", "ok", "detail"):
        t.add_column(col)
    for c in rep.checks:
        mark = "[green]yes[/]" if c.ok else ("[red]NO[/]" if c.required else "[yellow]no[/]")
        t.add_row(c.name + (" *" if c.required else ""), mark, c.detail)
    render.console.print(t)
    render.console.print(f"OVS datapath: [bold]{rep.datapath}[/]   link impairments: [bold]{rep.impairment}[/]   "
                         "(* required)")
    if not rep.ok:
        sys.exit(3)


def _build(topology: Path, controller_app: str | None, on_event):
    """A Testbed for the file, checked by every layer first (a bad file builds nothing)."""
    from testbed.engine.testbed import Testbed
    from testbed.runner import load

    return Testbed(load(topology), source=str(topology), on_event=on_event, controller_app=controller_app)


@cli.command()
@topology_arg
@click.option("-d", "--detach", is_flag=True, help="Return once the network is up; stop it with `testbed down`.")
@click.option("--controller-app", callback=app_path,
              help="Override the topology's controller app (name, module or .py path).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def up(topology: Path, detach: bool, controller_app: str | None, quiet: bool) -> None:
    """Build the network and keep it up until Ctrl-C, SIGTERM or `testbed down`."""
    from testbed.runner import load

    load(topology)  # bad input fails here, before anything is created or forked
    if detach:
        _up_detached(topology, controller_app)
        return
    with signals_raise(), render.EventRenderer(quiet) as ev:
        tb = _build(topology, controller_app, ev)
        try:
            tb.up()
            ev.progress.stop()
            render.console.print(render.nodes_table(tb.manifest))
            render.console.print(f"[green]up[/] in {tb.timings['up_s']:.1f}s — run [bold]{tb.run_id}[/]. "
                                 "Ctrl-C or `testbed down` to stop.")
            for w in tb.warnings:
                render.console.print(f"[yellow]! {w}[/]")
            while True:
                signal.pause()
        except (KeyboardInterrupt, Interrupted):
            # Once up, Ctrl-C, SIGTERM (`testbed down`) and SIGHUP are the normal way to stop.
            if tb.manifest is None or tb.manifest.state != "up":
                raise
        finally:
            with signals_ignored():
                tb.down()
    render.console.print("[green]down[/]: everything this run created is removed")


def _up_detached(topology: Path, controller_app: str | None) -> None:
    from testbed.engine.rundir import all_runs, state_dir, up_log

    state_dir().mkdir(parents=True, exist_ok=True)
    log = up_log(os.getpid())
    args = [sys.executable, "-m", "testbed.cli.main", "up", "--quiet", str(topology)]
    if controller_app:
        args += ["--controller-app", controller_app]
    with open(log, "wb") as fh:
        child = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    with render.err_console.status(f"building {topology} in the background…"):
        while True:
            rc = child.poll()
            mine = [m for m in all_runs() if m.supervisor_pid == child.pid]
            if mine and mine[0].state == "up":
                break
            if rc is not None:
                render.err_console.print(log.read_text(errors="replace")[-3000:])
                raise TestbedError(f"testbed up failed (exit {rc}); log: {log}")
            time.sleep(0.2)
    # The log moves into the run's directory, which teardown removes: a run leaves nothing behind.
    # (A failed start keeps it in the state directory: its path was printed with the error; `testbed clean`
    # removes it once this process has exited.)
    run_log = mine[0].dir / "up.log"
    log.replace(run_log)
    render.console.print(render.nodes_table(mine[0]))
    render.console.print(f"[green]up[/] — run [bold]{mine[0].run_id}[/] (pid {child.pid}, log {run_log}). "
                         "Stop it with `testbed down`.")


@cli.command()
@run_opt
@click.option("--all", "all_runs_", is_flag=True, help="Stop every running testbed.")
def down(run_id: str | None, all_runs_: bool) -> None:
    """Tear down a running testbed (from any shell)."""
    from testbed.engine.rundir import all_runs, live

    runs = [m for m in all_runs() if live(m)] if all_runs_ else [pick_run(run_id)]
    for m in runs:
        how = stop_run(m)
        render.console.print(f"[green]down[/]: run {m.run_id} ({m.name}) {how}")


@cli.command()
@run_opt
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(run_id: str | None, as_json: bool) -> None:
    """What is running: runs, their state, nodes and controller."""
    from dataclasses import asdict

    from rich.table import Table

    from testbed.engine.rundir import all_runs, live

    runs = [pick_run(run_id)] if run_id else all_runs()
    if as_json:
        click.echo(json.dumps([dict(asdict(m), live=live(m)) for m in runs], indent=1))
        return
    if not runs:
        render.console.print("no testbed runs")
        return
    t = Table(title="testbed runs")
    for col in ("run", "name", "state", "pid", "age", "nodes", "impaired links", "datapath", "impairments", "controller"):
        t.add_column(col)
    for m in runs:
        state = m.state if live(m) else f"[red]{m.state} (owner dead: `testbed clean`)[/]"
        ctrl = m.controller.get("remote") or f"{m.controller.get('app', '')}:{m.controller.get('port', '')}"
        t.add_row(m.run_id, m.name, state, str(m.supervisor_pid), f"{time.time() - m.created:.0f}s",
                  str(len(m.nodes)), str(len(m.links)), m.datapath, m.impairment_backend, ctrl)
    render.console.print(t)
    if run_id:
        from testbed.cli.cmd_link import links_table

        render.console.print(render.nodes_table(runs[0]))
        if runs[0].links:
            render.console.print(links_table(runs[0]))


@cli.command(context_settings={"ignore_unknown_options": True})
@run_opt
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def exec(run_id: str | None, node: str, command: tuple[str, ...]) -> None:  # noqa: A001 - verb name
    """Run COMMAND inside NODE (by its topology name): testbed exec dr-tablet-01 -- ping -c3 emr"""
    from testbed.engine.rundir import is_alive

    m = pick_run(run_id)
    rec = m.nodes.get(node)
    if rec is None:
        raise UsageError(f"run {m.run_id} has no node {node!r}; nodes: {', '.join(sorted(m.nodes))}")
    from testbed import kinds
    from testbed.engine import runtimes

    if kinds.get(rec.kind).switch:
        raise UsageError(f"{node!r} is a switch (OVS bridge {rec.internal}); use ovs-ofctl/ovs-vsctl on it")
    if not is_alive(rec.pid, rec.pid_start):
        raise TestbedError(f"node {node!r} of run {m.run_id} is not running")
    full = runtimes.new(rec.runtime).enter_argv(rec, list(command) or ["bash", "--norc"])
    os.execvp(full[0], full)


@cli.command()
@topology_arg
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path), callback=checked_report_dir,
              help="Where reports go (checked before anything is built).")
@click.option("--format", "formats", default="json,junit,html", show_default=True, help="Report formats.")
@click.option("--controller-app", callback=app_path,
              help="Override the topology's controller app (name, module or .py path, e.g. your own Ryu app).")
@click.option("--no-isolation", is_flag=True, help="Skip the isolation matrix, the attack probes and the proof.")
@click.option("--isolation", "isolation_mode", type=click.Choice(["both", "probe", "verify"]), default="both",
              show_default=True, help="How isolation is checked: real packets (probe), the exhaustive proof over the "
                                      "installed rules (verify: no agent per host, for large alliances), or both.")
@click.option("-v", "--verbose", is_flag=True, help="List every check, not only failures.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def run(topology: Path, report_dir: Path | None, formats: str, controller_app: str | None,
        no_isolation: bool, isolation_mode: str, verbose: bool, quiet: bool) -> None:
    """Build, check every slice/pair, report, tear down. Exit 0 only if everything passed (1 if a check
    failed; Ctrl-C or SIGTERM: the reports of what ran until then, exit 130 or 143)."""
    from testbed.cli.options import parse_formats
    from testbed.report.writers import write_all
    from testbed.runner import RunInterrupted, default_report_dir, run as run_topology

    fmts = parse_formats(formats)
    stopped: RunInterrupted | None = None
    with signals_raise(), render.EventRenderer(quiet) as ev:
        tb = _build(topology, controller_app, ev)
        try:
            rep = run_topology(tb, ev, isolation=not no_isolation, isolation_mode=isolation_mode)
        except RunInterrupted as exc:  # torn down; the report holds what ran until the signal
            stopped, rep = exc, exc.report
        finally:
            with signals_ignored():
                tb.down()
    with signals_ignored():  # the reports of an interrupted run too: a second Ctrl-C must not lose them
        out = report_dir or default_report_dir(tb.topo.name, rep.run_id or "norun")
        written = write_all(rep, out, fmts)
    render.report(rep, verbose)
    render.console.print("reports: " + ", ".join(str(p) for p in written.values()))
    if stopped is not None:
        sys.exit(stopped.exit_code)
    sys.exit(0 if rep.verdict == "PASS" else 1)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def clean(dry_run: bool) -> None:
    """Remove leftovers of crashed runs (and only those): found by manifest and run-id tags."""
    from testbed.engine.rundir import all_runs, live, stale_up_logs
    from testbed.engine.ownership import stray_bridges, stray_helpers
    from testbed.engine.teardown import teardown

    runs = all_runs()
    dead = [m for m in runs if not live(m)]
    live_ids = {m.run_id for m in runs if live(m)}
    from testbed.engine.runtimes import all_runtimes

    known = {m.run_id for m in runs}
    orphans = stray_bridges(known)
    strays = [(rt, rid, names) for rt in all_runtimes() for rid, names in sorted(rt.orphans(known).items())]
    helpers = stray_helpers()
    logs = stale_up_logs()
    if not dead and not orphans and not strays and not helpers and not logs:
        render.console.print("nothing to clean" + (f" ({len(live_ids)} live run(s) left alone)" if live_ids else ""))
        return
    verb = "would remove" if dry_run else "removing"
    for m in dead:
        render.console.print(f"{verb} run {m.run_id} ({m.name}, {m.state}): "
                             f"{len(m.bridges)} bridges, {len(m.nodes)} nodes, {len(m.pids)} processes")
        if not dry_run:
            teardown(m)
    for bridge, rid in orphans:
        render.console.print(f"{verb} bridge {bridge} of run {rid} (no manifest)")
    if orphans and not dry_run:
        from testbed.engine.teardown import delete_bridges

        delete_bridges([b for b, _ in orphans])
    for rt, rid, names in strays:
        render.console.print(f"{verb} {len(names)} {rt.name} resource(s) of run {rid} (no manifest): {', '.join(names)}")
        if not dry_run:
            rt.remove_orphans(names)
    for pid, what, run_dir in helpers:
        render.console.print(f"{verb} {what} process {pid} (its run directory {run_dir} is gone)")
        if not dry_run:
            import os
            import signal

            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for log in logs:
        render.console.print(f"{verb} {log} (its `testbed up -d` failed and has exited)")
        if not dry_run:
            log.unlink(missing_ok=True)


def _register_plugins() -> None:
    """Verbs that live in their own modules (one concern each) attach themselves here."""
    import importlib
    import pkgutil

    import testbed.cli as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"testbed.cli.{mod.name}").register(cli)


_register_plugins()


def main() -> None:
    cli(prog_name="testbed")


if __name__ == "__main__":
    main()
