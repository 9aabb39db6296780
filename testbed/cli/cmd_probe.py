"""`testbed probe FILE`: build, run the isolation probe (matrix + attacks), report, tear down.
With `--script PATH --from NODE --to NODE [--expect blocked|arrive]`: only that tester's probe.

Exit 1 on any leak or false block (any failed probe), 0 otherwise.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from testbed.cli.options import app_path, checked_report_dir


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--controller-app", callback=app_path,
                  help="Override the topology's controller app (e.g. allow-all to see leaks).")
    @click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path), callback=checked_report_dir,
                  help="Where reports go (checked before anything is built).")
    @click.option("--format", "formats", default="json,junit,html", show_default=True, help="Report formats.")
    @click.option("--no-attacks", is_flag=True, help="Only the should-pass / must-fail matrix.")
    @click.option("--script", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                  help="Run only this probe script (Python with Scapy) in --from against --to; "
                       "the capture at the target decides.")
    @click.option("--from", "src", multiple=True, metavar="NODE", help="Node(s) the --script runs in.")
    @click.option("--to", "dst", multiple=True, metavar="NODE", help="Node(s) whose capture decides.")
    @click.option("--expect", type=click.Choice(["blocked", "arrive", "fail", "pass"]), default="blocked",
                  show_default=True, help="What the --script's frames must do at the target.")
    @click.option("-v", "--verbose", is_flag=True, help="List every probe, not only failures.")
    @click.option("-q", "--quiet", is_flag=True, help="No progress output.")
    def probe(topology: Path, controller_app: str | None, report_dir: Path | None, formats: str,
              no_attacks: bool, script: Path | None, src: tuple[str, ...], dst: tuple[str, ...], expect: str,
              verbose: bool, quiet: bool) -> None:
        """Prove slice isolation with real packets: every should-pass and must-fail flow, plus attacks
        (with --script: only that security tester's probe)."""
        from testbed.cli import render
        from testbed.cli.signals import signals_ignored, signals_raise
        from testbed.engine.testbed import Testbed
        from testbed.probe.run import run_probes
        from testbed.probe.script import KIND as SCRIPT_KIND, run_script_probes
        from testbed.cli.options import parse_formats
        from testbed.report.writers import write_all
        from testbed.runner import RunInterrupted, default_report_dir, load, run as run_topology

        fmts = parse_formats(formats)
        topo = load(topology)  # bad input fails here, before anything is created
        checks = lambda t, e: run_probes(t, e.sink, attacks=not no_attacks)  # noqa: E731
        if script is not None or src or dst:
            entry = script_entry(topo, script, src, dst, expect)
            checks = lambda t, e: run_script_probes(t, [entry], e.sink)  # noqa: E731
        stopped: RunInterrupted | None = None
        with signals_raise(), render.EventRenderer(quiet) as ev:
            tb = Testbed(topo, source=str(topology), on_event=ev, controller_app=controller_app)
            try:
                rep = run_topology(tb, ev, checks=checks)
            except RunInterrupted as exc:  # torn down; the report holds what ran until the signal
                stopped, rep = exc, exc.report
            finally:
                with signals_ignored():
                    tb.down()
        rep.timings["probe_s"] = rep.timings.get("checks_s", 0.0)
        with signals_ignored():  # a second Ctrl-C must not lose the report of what ran
            out = report_dir or default_report_dir(tb.topo.name, rep.run_id or "norun")
            written = write_all(rep, out, fmts)
        render.report(rep, verbose)
        leaks = sum(c.metrics.get("verdict") == "LEAK" for c in rep.checks)
        false_blocks = sum(c.metrics.get("verdict") == "FALSE BLOCK" for c in rep.checks)
        matrix = sum(c.kind in ("isolation", "attack:forbidden-port") for c in rep.checks)
        attacks = sum(c.kind.startswith("attack:") and c.kind != "attack:forbidden-port" for c in rep.checks)
        scripts = sum(c.kind == SCRIPT_KIND for c in rep.checks)
        render.console.print(f"isolation probe: {matrix} matrix probes, {attacks} attack probes"
                             + (f", {scripts} script probes" if scripts else "") + " in "
                             f"{rep.timings.get('probe_s', 0):.1f}s: "
                             f"[{'red' if leaks else 'green'}]{leaks} leak(s)[/], "
                             f"[{'red' if false_blocks else 'green'}]{false_blocks} false block(s)[/]")
        render.console.print("reports: " + ", ".join(str(p) for p in written.values()))
        if stopped is not None:
            sys.exit(stopped.exit_code)
        sys.exit(0 if rep.verdict == "PASS" else 1)


def script_entry(topo, script: Path | None, src: tuple[str, ...], dst: tuple[str, ...], expect: str):
    """--script/--from/--to/--expect as a probe entry of the file would say it (UsageError: exit 2)."""
    from testbed.errors import UsageError
    from testbed.topology.model import Probe

    if script is None or not src or not dst:
        raise UsageError("a script probe needs --script PATH, --from NODE and --to NODE")
    from testbed.ran.network import prepare

    hosts = {n.name for n in prepare(topo)[0].hosts}  # the 5G core and an implicit UPF are nodes of the run too
    for opt, names in (("--from", src), ("--to", dst)):
        bad = [n for n in names if n not in hosts]
        if bad:
            raise UsageError(f"{opt}: no host named {', '.join(map(repr, bad))} in {topo.name} "
                             f"(hosts: {', '.join(sorted(hosts)[:12])}{', ...' if len(hosts) > 12 else ''})")
    name = re.sub(r"[^a-z0-9-]+", "-", script.stem.lower()).strip("-")[:63] or "script"
    return Probe.model_validate({"name": name, "type": "script", "script": str(script.resolve()),
                                 "from": list(src), "to": list(dst), "expect": expect})

