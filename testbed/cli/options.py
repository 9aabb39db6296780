"""Options and argument parsing shared by several verbs (declared once, as pip-tools does)."""
from __future__ import annotations

import os
import shutil
import tempfile
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
    (in a topology file, `controller.app` is relative to the file); an app the controller process
    would not find is a usage error (exit 2), before anything is built."""
    from pathlib import Path

    from testbed.topology.controllerapp import problem

    if value and value.endswith(".py") and not Path(value).is_absolute() and Path(value).is_file():
        value = str(Path(value).resolve())
    if value is not None and (why := problem(value, Path("."))) is not None:
        rel = " (a .py path here is relative to the current directory)" if value.endswith(".py") else ""
        raise click.BadParameter(why + rel, ctx=ctx, param=param)
    return value


def writable(path: Path) -> Path:
    """`path` for a file the user named (-o and the like): a clear usage error now, not a traceback after the
    work, when its directory is missing or it cannot be written."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")
    if why := _cannot_create_in(path.parent):  # root passes access(2) where nothing can be made (/proc, /sys)
        raise UsageError(f"cannot write {path}: {why}")
    return path


def writable_dir(path: Path, files: tuple[str, ...] = ()) -> Path:
    """`path` for a directory a command fills with files after its long work (--report-dir and the like),
    made if missing: a clear usage error now, before anything is built, when it cannot be made or written
    (`files`: names in it that will be overwritten). Checked by trying: a directory with a file in it is made
    and removed in the deepest part of `path` that exists (access(2) tells root yes for /proc and /sys, where
    nothing can be made); nothing of `path` itself is made yet."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"cannot write into {path}: it is not a directory")
    base = path
    while not base.exists():
        if base.is_symlink():
            raise UsageError(f"cannot write into {path}: {base} is a symbolic link to nothing")
        base = base.parent
    if not base.is_dir():
        raise UsageError(f"cannot write into {path}: {base} is not a directory")
    if why := _cannot_create_in(base):
        raise UsageError(f"cannot write into {path}: {why}")
    if base == path:
        for name in files:
            f = path / name
            if f.is_dir() or (f.exists() and not os.access(f, os.W_OK)):
                raise UsageError(f"cannot write {f}: " + ("it is a directory" if f.is_dir() else "permission denied"))
    return path


def _cannot_create_in(directory: Path) -> str | None:
    """Why nothing can be created in `directory` (None: a directory with a file in it was made there, and
    removed again)."""
    where = os.path.abspath(directory)
    try:
        probe = tempfile.mkdtemp(prefix=".testbed-write-check-", dir=directory)
    except OSError as exc:
        return f"cannot create anything in {where} ({exc.strerror or exc})"
    try:
        (Path(probe) / "check").write_bytes(b"")
    except OSError as exc:
        return f"cannot create files in {where} ({exc.strerror or exc})"
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    return None


def checked_report_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """--report-dir of a command that writes its reports after building and checking a network (run, probe):
    checked before anything is built, a usage error (exit 2) naming the option and the reason. Without the
    option, the default place (reports/ in the current directory, testbed.runner.default_report_dir) is."""
    from testbed.report.writers import FILES  # here: the writers import jinja2, slow for every command
    from testbed.runner import default_report_dir

    try:
        if value is not None:
            return writable_dir(value, tuple(FILES.values()))
        writable_dir(default_report_dir("", "").parent)
    except UsageError as exc:
        if value is not None:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        raise click.UsageError(f"{exc}; reports go there without {param.opts[0]}: choose a directory with "
                               f"{param.opts[0]}", ctx=ctx) from None
    return value
