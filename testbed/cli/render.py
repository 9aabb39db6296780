"""Render library events and results with rich. All terminal output lives here."""
from __future__ import annotations

import os

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from testbed.events import Event
from testbed.errors import Problem
from testbed.report.model import RunReport
from testbed.report.views import slo_rows

PIPED_WIDTH = 160  # columns when output goes to a pipe or a log (rich's 80 cut SUPIs and TEIDs into slivers)


def _console(stderr: bool) -> Console:
    """A terminal keeps its own width; a pipe or a log gets PIPED_WIDTH, unless COLUMNS says otherwise."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal or os.environ.get("COLUMNS") else PIPED_WIDTH
    return Console(stderr=stderr, highlight=False, width=width)


console = _console(stderr=False)
err_console = _console(stderr=True)


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
            mark = "[red]✗[/]" if ev.failed else "[green]✓[/]"
            self.progress.console.print(f"{mark} {ev.stage}" + (f": {ev.message}" if ev.message else ""))
        elif ev.kind == "info":
            self.progress.console.print(f"[dim]{ev.message}[/]")
        elif ev.kind == "warning":
            self.progress.console.print(f"[yellow]! {ev.message}[/]")


def printable(text: str) -> str:
    """Control and other unprintable characters as escapes (\\x1b, \\x85, \\u2028): a file's keys and
    values must not move the cursor, retitle the terminal or break a problem over two lines."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def problems(ps: list[Problem]) -> None:
    """One `FILE:LINE field: message` line per problem.

    Everything but our own styling is user input (paths, keys, values quoted in
    messages), so it is escaped: `[/]` in a file must print, not parse as a tag, and
    control characters print as escapes.
    Lines are never wrapped, so grep and editors can follow `FILE:LINE` in logs.
    """
    for p in ps:
        where = f"{p.file}:{p.line}" if p.line else p.file
        field = f" [bold]{escape(printable(p.field))}[/]:" if p.field else ":"
        err_console.print(f"[red]{escape(printable(where))}[/]{field} {escape(printable(p.message))}", soft_wrap=True)
    err_console.print(f"[red]{len(ps)} problem(s)[/]")


def nodes_table(manifest) -> Table:
    t = Table(title=f"{manifest.name} (run {manifest.run_id})", show_lines=False)
    for col in ("node", "kind", "site", "address", "mac", "internal"):
        t.add_column(col)
    for n in manifest.nodes.values():
        t.add_row(n.name, n.kind, n.site or "", n.ip or (f"dpid {n.dpid}" if n.dpid else ""), n.mac or "", n.internal)
    return t


STATUS_STYLE = {"pass": "green", "fail": "bold red", "skip": "dim"}
SLICE_ROWS_MAX = 60  # beyond this the table scrolls past the summary; the HTML report lists all


def slice_table(rep: RunReport) -> Table | None:
    """Per-slice SLO verdicts (slice, workload, SLO, measured, verdict); None when there are none.

    Failures are listed first when there are too many rows, so the terminal shows what matters."""
    rows = slo_rows(rep)
    if not rows:
        return None
    shown = rows if len(rows) <= SLICE_ROWS_MAX else \
        ([r for r in rows if r.status == "fail"] + [r for r in rows if r.status != "fail"])[:SLICE_ROWS_MAX]
    t = Table(title=f"{rep.name}: SLO verdicts per slice", show_lines=False)
    for col in ("slice", "workload", "SLO", "measured", "verdict"):
        t.add_column(col)
    last = None
    for r in shown:
        style = STATUS_STYLE.get(r.status, "")
        what = escape(r.workload) + (f" [dim]{escape(r.path)}[/]" if r.path else "")
        t.add_row(escape(r.slice) if r.slice != last else "", what, escape(r.slo), escape(r.measured),
                  f"[{style}]{r.status.upper()}[/]")
        last = r.slice
    if len(rows) > len(shown):
        t.caption = f"{len(rows) - len(shown)} more rows in the report"
    return t


def table1_table(rep: RunReport) -> Table | None:
    """The Table 1 drill's figures beside the paper's (None when the run had no desktop-failure arms)."""
    check = next((c for c in rep.checks if c.kind == "table1"), None)
    if check is None:
        return None
    t = Table(title=f"desktop failure (paper's Table 1): [{STATUS_STYLE.get(check.status, '')}]"
                    f"{check.status.upper()}[/]")
    for col in ("arm", "recovery: paper", "recovery: this run", "queued (avg): paper", "queued (avg / arriving): this run"):
        t.add_column(col)
    for arm, row in check.metrics.get("arms", {}).items():
        q = row.get("queued") or {}
        t.add_row(arm, row.get("paper_recovery_text", "-"),
                  f"{row.get('recovery_text', '-')} [dim]{escape(row.get('recovery_source', '').split(' ')[0])}[/]",
                  f"about {row.get('paper_queued')}", f"{q.get('mean_queue', '-')} / {q.get('arrivals', '-')}")
    return t


STAGES = (("up", "up_s"), ("of which 5G", "ran_s"), ("reachability", "reachability_s"), ("probe", "probe_s"),
          ("verify", "verify_s"), ("workloads", "workloads_s"), ("drills", "drills_s"), ("down", "down_s"))


def stage_times(timings: dict[str, float]) -> list[tuple[str, float]]:
    """(stage, seconds) for the stages a run went through, in run order."""
    return [(name, timings[key]) for name, key in STAGES if key in timings]


def verify_line(rep: RunReport) -> str | None:
    """The exhaustive proof's verdict beside the probe's: 'verified: 0 leaks, 0 false blocks over ...'."""
    v = rep.verify
    if not v or "leaks" not in v:
        return None
    colour = "green" if not v["leaks"] and not v["false_blocks"] else "red"
    probed = [c for c in rep.checks if "verdict" in c.metrics and not c.kind.startswith("verify")]
    probe = [c for c in probed if c.metrics["verdict"] in ("LEAK", "FALSE BLOCK")]
    return (f"[{colour}]verified: {v['leaks']} leaks, {v['false_blocks']} false blocks[/] over {v['pairs']} pairs "
            f"and every header ({v['rules']} rules read back, {v['seconds']:.1f}s"
            + (f"; {v['replayed']} replayed: {v['confirmed']} confirmed, {v['refuted']} refuted" if v.get("replayed") else "")
            + ("); the packet probe: " + (f"{sum(c.metrics['verdict'] == 'LEAK' for c in probe)} leaks, "
                                           f"{sum(c.metrics['verdict'] == 'FALSE BLOCK' for c in probe)} false blocks"
                                           if probed else "not run")))


def report(rep: RunReport, verbose: bool = False) -> None:
    t = Table(title=f"{rep.name}: checks", show_lines=False)
    for col in ("check", "pass", "fail", "skip"):
        t.add_column(col)
    for kind, c in rep.summary().items():
        t.add_row(kind, str(c["pass"]), f"[red]{c['fail']}[/]" if c["fail"] else "0", str(c["skip"]))
    console.print(t)
    if (slices := slice_table(rep)) is not None:
        console.print(slices)
    if (t1 := table1_table(rep)) is not None:
        console.print(t1)
    if (line := verify_line(rep)) is not None:
        console.print(line)
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
    if stages := stage_times(tm):
        console.print("where the time went: " + ", ".join(f"{name} {sec:.1f}s" for name, sec in stages))
    if rep.error:
        console.print(f"[red]error:[/] {rep.error}")
    style = "bold white on green" if rep.verdict == "PASS" else "bold white on red"
    console.print(f"[{style}] {rep.verdict} [/] {rep.name} run {rep.run_id}: "
                  f"{sum(c.status == 'pass' for c in rep.checks)} passed, {len(rep.failed)} failed, "
                  f"{sum(c.status == 'skip' for c in rep.checks)} skipped")
