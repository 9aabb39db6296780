"""Render library events and results with rich. All terminal output lives here."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from testbed.events import Event
from testbed.errors import Problem
from testbed.report.model import RunReport

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


class EventRenderer:
    """A progress bar per stage; info and warnings printed above the bars."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=True)
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> "EventRenderer":
        if not self.quiet:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, ev: Event) -> None:
        if self.quiet:
            return
        if ev.kind == "stage":
            self.tasks[ev.stage] = self.progress.add_task(ev.message or ev.stage, total=ev.total or None)
        elif ev.kind == "progress" and ev.stage in self.tasks:
            self.progress.update(self.tasks[ev.stage], completed=ev.done, total=ev.total)
        elif ev.kind == "done":
            if ev.stage in self.tasks:
                self.progress.remove_task(self.tasks.pop(ev.stage))
            self.progress.console.print(f"[green]✓[/] {ev.stage}" + (f": {ev.message}" if ev.message else ""))
        elif ev.kind == "info":
            self.progress.console.print(f"[dim]{ev.message}[/]")
        elif ev.kind == "warning":
            self.progress.console.print(f"[yellow]! {ev.message}[/]")


def problems(ps: list[Problem]) -> None:
    """One `FILE:LINE field: message` line per problem.

    Everything but our own styling is user input (paths, keys, values quoted in
    messages), so it is escaped: `[/]` in a file must print, not parse as a tag.
    Lines are never wrapped, so grep and editors can follow `FILE:LINE` in logs.
    """
    for p in ps:
        where = f"{p.file}:{p.line}" if p.line else p.file
        field = f" [bold]{escape(p.field)}[/]:" if p.field else ":"
        err_console.print(f"[red]{escape(where)}[/]{field} {escape(p.message)}", soft_wrap=True)
    err_console.print(f"[red]{len(ps)} problem(s)[/]")


def nodes_table(manifest) -> Table:
    t = Table(title=f"{manifest.name} (run {manifest.run_id})", show_lines=False)
    for col in ("node", "kind", "site", "address", "mac", "internal"):
        t.add_column(col)
    for n in manifest.nodes.values():
        t.add_row(n.name, n.kind, n.site or "", n.ip or (f"dpid {n.dpid}" if n.dpid else ""), n.mac or "", n.internal)
    return t


def report(rep: RunReport, verbose: bool = False) -> None:
    t = Table(title=f"{rep.name}: checks", show_lines=False)
    for col in ("check", "pass", "fail", "skip"):
        t.add_column(col)
    for kind, c in rep.summary().items():
        t.add_row(kind, str(c["pass"]), f"[red]{c['fail']}[/]" if c["fail"] else "0", str(c["skip"]))
    console.print(t)
    shown = [c for c in rep.checks if c.status == "fail" or verbose]
    for c in shown[:50]:
        colour = {"pass": "green", "fail": "red", "skip": "dim"}[c.status]
        console.print(f"  [{colour}]{c.status.upper():4}[/] {c.kind}: {c.name} — {c.detail}")
    if len(shown) > 50:
        console.print(f"  … {len(shown) - 50} more in the report")
    for w in rep.warnings[:10]:
        console.print(f"[yellow]! {w}[/]")
    if len(rep.warnings) > 10:
        console.print(f"[yellow]! … {len(rep.warnings) - 10} more warnings in the report[/]")
    tm = rep.timings
    console.print(f"platform: datapath={rep.platform.get('datapath')} impairments={rep.platform.get('impairments')}  "
                  f"up {tm.get('up_s', 0):.1f}s, checks {tm.get('checks_s', 0):.1f}s, down {tm.get('down_s', 0):.1f}s")
    if rep.error:
        console.print(f"[red]error:[/] {rep.error}")
    style = "bold white on green" if rep.verdict == "PASS" else "bold white on red"
    console.print(f"[{style}] {rep.verdict} [/] {rep.name} run {rep.run_id}: "
                  f"{sum(c.status == 'pass' for c in rep.checks)} passed, {len(rep.failed)} failed, "
                  f"{sum(c.status == 'skip' for c in rep.checks)} skipped")
