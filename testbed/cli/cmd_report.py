"""`testbed report RESULTS.json`: write the JSON, JUnit and HTML reports again from a report.json.

For a report copied off a CI runner, one written by an older testbed (its sections
that did not exist yet are said to be missing), or after a template change.
"""
from __future__ import annotations

import json
from pathlib import Path

import click


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                  help="Directory to write to (default: the one RESULTS is in).")
    @click.option("--format", "formats", default="json,junit,html", show_default=True, help="Report formats.")
    @click.option("-v", "--verbose", is_flag=True, help="List every check, not only failures.")
    def report(results: Path, out_dir: Path | None, formats: str, verbose: bool) -> None:
        """Regenerate reports from a run's report.json, and print its summary."""
        from testbed.cli import render
        from testbed.cli.options import parse_formats
        from testbed.errors import UsageError
        from testbed.report.model import RunReport
        from testbed.report.writers import FILES, write_all

        fmts = parse_formats(formats)
        try:
            rep = RunReport.from_dict(json.loads(results.read_text(encoding="utf-8")))
        except (ValueError, TypeError, AttributeError) as exc:
            raise UsageError(f"{results}: not a readable testbed report ({exc})") from None
        out = out_dir or results.parent
        if (out / FILES["json"]).resolve() == results.resolve() and "json" in fmts:
            fmts = tuple(f for f in fmts if f != "json")  # never rewrite the input in place
        written = write_all(rep, out, fmts)
        render.report(rep, verbose)
        render.console.print("reports: " + (", ".join(str(p) for p in written.values()) or "none written"))
