"""Options and argument parsing shared by several verbs (declared once, as pip-tools does)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from testbed.errors import UsageError


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


def writable(path: Path) -> Path:
    """`path` for a file the user named (-o and the like): a clear usage error now, not a traceback after the
    work, when its directory is missing or it cannot be written."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")
    return path
