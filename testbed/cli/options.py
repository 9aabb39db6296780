"""Options and argument parsing shared by several verbs (declared once, as pip-tools does)."""
from __future__ import annotations

import click


def parse_formats(text: str) -> tuple[str, ...]:
    """'json,html' -> ('json', 'html'); an unknown format is a usage error (exit 2)."""
    from testbed.report.writers import FORMATS  # here: the writers import jinja2, slow for every command

    fmts = tuple(f.strip() for f in text.split(",") if f.strip())
    if unknown := set(fmts) - set(FORMATS):
        raise click.BadParameter(f"unknown format(s) {', '.join(sorted(unknown))}; choose from {', '.join(FORMATS)}",
                                 param_hint="--format")
    return fmts


def app_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--controller-app: a .py path given on the command line is relative to the current directory
    (in a topology file, `controller.app` is relative to the file)."""
    from pathlib import Path

    if value and value.endswith(".py") and not Path(value).is_absolute() and Path(value).is_file():
        return str(Path(value).resolve())
    return value
