"""A stage that ends with failed checks is shown as failed, not ticked (QA: `✓ workloads: 18/19 ...`)."""
from __future__ import annotations

from rich.console import Console

from testbed.cli.render import EventRenderer
from testbed.events import Emitter


def _render(monkeypatch, **done) -> str:
    import testbed.cli.render as render

    console = Console(record=True, width=120)
    monkeypatch.setattr(render, "err_console", console)
    r = EventRenderer()
    Emitter(r).stage("workloads", "running workloads", total=2)
    Emitter(r).done("workloads", "1/2 workload checks passed", **done)
    return console.export_text()


def test_a_stage_with_failures_is_marked_failed(monkeypatch):
    out = _render(monkeypatch, failed=1)
    assert "✗ workloads: 1/2 workload checks passed" in out and "✓" not in out


def test_a_clean_stage_is_ticked(monkeypatch):
    assert "✓ workloads" in _render(monkeypatch)
