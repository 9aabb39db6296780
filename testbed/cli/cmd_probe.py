"""`testbed probe FILE`: build, run the isolation probe (matrix + attacks), report, tear down.

Exit 1 on any leak or false block (any failed probe), 0 otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from testbed.cli.options import app_path


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--controller-app", callback=app_path, help="Override the topology's controller app (e.g. allow-all to see leaks).")
    @click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path), help="Where reports go.")
    @click.option("--format", "formats", default="json,junit,html", show_default=True, help="Report formats.")
    @click.option("--no-attacks", is_flag=True, help="Only the should-pass / must-fail matrix.")
    @click.option("-v", "--verbose", is_flag=True, help="List every probe, not only failures.")
    @click.option("-q", "--quiet", is_flag=True, help="No progress output.")
    def probe(topology: Path, controller_app: str | None, report_dir: Path | None, formats: str,
              no_attacks: bool, verbose: bool, quiet: bool) -> None:
        """Prove slice isolation with real packets: every should-pass and must-fail flow, plus attacks."""
        from testbed.cli import render
        from testbed.cli.signals import signals_ignored, signals_raise
        from testbed.engine.testbed import Testbed
        from testbed.probe.run import run_probes
        from testbed.cli.options import parse_formats
        from testbed.report.writers import write_all
        from testbed.runner import default_report_dir, run as run_topology
        from testbed.runner import load

        fmts = parse_formats(formats)
        load(topology)  # bad input fails here, before anything is created
        with signals_raise(), render.EventRenderer(quiet) as ev:
            tb = Testbed(load(topology), source=str(topology), on_event=ev, controller_app=controller_app)
            try:
                rep = run_topology(tb, ev, checks=lambda t, e: run_probes(t, e.sink, attacks=not no_attacks))
            finally:
                with signals_ignored():
                    tb.down()
        rep.timings["probe_s"] = rep.timings.get("checks_s", 0.0)
        out = report_dir or default_report_dir(tb.topo.name, rep.run_id or "norun")
        written = write_all(rep, out, fmts)
        render.report(rep, verbose)
        leaks = sum(c.metrics.get("verdict") == "LEAK" for c in rep.checks)
        false_blocks = sum(c.metrics.get("verdict") == "FALSE BLOCK" for c in rep.checks)
        matrix = sum(c.kind in ("isolation", "attack:forbidden-port") for c in rep.checks)
        attacks = sum(c.kind.startswith("attack:") and c.kind != "attack:forbidden-port" for c in rep.checks)
        render.console.print(f"isolation probe: {matrix} matrix probes, {attacks} attack probes in "
                             f"{rep.timings.get('probe_s', 0):.1f}s: "
                             f"[{'red' if leaks else 'green'}]{leaks} leak(s)[/], "
                             f"[{'red' if false_blocks else 'green'}]{false_blocks} false block(s)[/]")
        render.console.print("reports: " + ", ".join(str(p) for p in written.values()))
        sys.exit(0 if rep.verdict == "PASS" else 1)
