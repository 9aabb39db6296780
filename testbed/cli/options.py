"""Options and argument parsing shared by several verbs (declared once, as pip-tools does)."""
from __future__ import annotations

import click

from testbed.report.writers import FORMATS


def parse_formats(text: str) -> tuple[str, ...]:
    """'json,html' -> ('json', 'html'); an unknown format is a usage error (exit 2)."""
    fmts = tuple(f.strip() for f in text.split(",") if f.strip())
    if unknown := set(fmts) - set(FORMATS):
        raise click.BadParameter(f"unknown format(s) {', '.join(sorted(unknown))}; choose from {', '.join(FORMATS)}",
                                 param_hint="--format")
    return fmts
