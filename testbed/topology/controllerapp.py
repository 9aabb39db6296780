"""What a controller app name means, and whether the controller process will find it.

One set of rules for the loader (`controller.app` in a topology file), the CLI
(`--controller-app`) and the engine (testbed/engine/controller.py resolve_app), so the
check and the run cannot disagree. An app is:

- a bundled app name (`auto`: slicing when the file has slices, else forwarding);
- a path ending in `.py`: relative to a base directory (the topology file's
  directory for `controller.app`, the current directory for `--controller-app`);
- a dotted module name, imported by the controller process
  (testbed/engine/osken_main.py), whose import path is this repository, its current
  directory (that of the command that starts it), then the usual `sys.path`;
  `ryu.X` is `os_ken.X` there unless a real Ryu is installed (controllers/ryu_alias.py).

Nothing is imported to check a module (os-ken apps are slow to import and have side
effects): each dotted part is looked up by the import system's finders, a package's
submodules in the package's own directories, so no parent package runs either.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from importlib.machinery import PathFinder
from pathlib import Path

BUNDLED_APPS = {
    "forwarding": "controllers.forwarding",  # installs the plan as computed (slicing rules if sliced)
    "slicing": "controllers.slicing",  # slice enforcement; refuses a plan without slices
    "allow-all": "controllers.allow_all",  # DELIBERATELY BROKEN, for prober tests: ignores slices
    "stateless": "controllers.stateless",  # DELIBERATELY WEAKER, for prober tests: slice rules without conntrack
}
AUTO = "auto"  # slicing for a topology with slices, forwarding otherwise

# The repository root: the controller process puts it first on its import path (for `controllers`).
REPO = Path(__file__).resolve().parents[2]

# controllers/ryu_alias.py's names (a lower layer cannot import it; a test keeps the two equal)
RYU, OS_KEN = "ryu", "os_ken"


class AppNotFound(ValueError):
    """The controller process could not load this app; the message says why."""


def ryu_target(name: str) -> str | None:
    """'ryu.base.app_manager' -> 'os_ken.base.app_manager' (as controllers/ryu_alias.target_name); None otherwise."""
    if name == RYU:
        return OS_KEN
    if name.startswith(RYU + "."):
        return OS_KEN + name[len(RYU):]
    return None


def locate(app: str, base_dir: Path, sliced: bool = False) -> str:
    """What the controller process is given for `app`: a bundled app's module, a .py file's absolute
    path, or the module name as written. AppNotFound if a .py file does not exist (a module is
    not looked up here: see check)."""
    if app == AUTO:
        app = "slicing" if sliced else "forwarding"
    if app in BUNDLED_APPS:
        return BUNDLED_APPS[app]
    if app.endswith(".py"):
        p = Path(app)
        p = p if p.is_absolute() else Path(base_dir) / p
        if not _stat_ok(p.is_file):
            why = " (it is a directory)" if _stat_ok(p.is_dir) else ""
            raise AppNotFound(f"no such file: {_show(str(p), limit=300)}{why}")
        return str(p.resolve())
    return app


def check(app: str, base_dir: Path) -> None:
    """AppNotFound unless the controller process would find `app` (located as `locate` does,
    a .py path relative to `base_dir`). Imports nothing."""
    target = locate(app, base_dir)
    if app == AUTO or app in BUNDLED_APPS or app.endswith(".py"):
        return
    parts = target.split(".")
    if not target or not all(part.isidentifier() for part in parts):
        raise AppNotFound(f"{_show(app, quote=True)} is not an app: a bundled one "
                          f"({', '.join([AUTO, *BUNDLED_APPS])}), a path ending in .py, or a module name "
                          "(dotted Python identifiers)")
    if (missing := _missing_part(target)) is None:
        return
    if (alias := ryu_target(target)) is not None and not _present(RYU):
        if (missing_alias := _missing_part(alias)) is None:
            return
        raise AppNotFound(f"no module named {_show(target, quote=True)}: Ryu is not installed here and os-ken, "
                          f"which runs Ryu apps in its place, has no {_show(missing_alias, quote=True)} "
                          "(it ships no sample apps, no ryu.app.wsgi, no ryu.cmd)")
    tail = "" if missing == target else f" (so none named {_show(target, quote=True)})"
    raise AppNotFound(f"no module named {_show(missing, quote=True)}{tail}; an app is a bundled one "
                      f"({', '.join([AUTO, *BUNDLED_APPS])}), a path ending in .py, or a module the controller "
                      "can import")


def problem(app: str, base_dir: Path) -> str | None:
    """Why `app` would not load (check's message), or None."""
    try:
        check(app, base_dir)
    except AppNotFound as exc:
        return str(exc)
    return None


def _stat_ok(test) -> bool:
    """Path.is_file/is_dir, False where the name itself is impossible (too long, a NUL byte)."""
    try:
        return test()
    except (OSError, ValueError):
        return False


def _show(text: str, quote: bool = False, limit: int = 80) -> str:
    """A name from the file for a message: cut (a 1 MB name must not make a 1 MB message), quoted
    as repr when asked or when it holds characters that do not print."""
    shown = repr(text) if quote or not text.isprintable() else text
    return shown if len(shown) <= limit else shown[:limit] + "…"


def _search_path() -> list[str]:
    """Where the controller process looks besides sys.path: the repository and the current directory."""
    return [str(REPO), os.getcwd()]


def _present(name: str) -> bool:
    return _missing_part(name) is None


def _missing_part(name: str) -> str | None:
    """The first dotted prefix of `name` that no finder finds (None: all found), without importing.

    The top-level name goes through the import system's finders (editable installs, PYTHONPATH,
    site-packages), then the controller process's extra directories; each further part is looked
    for in its parent package's directories only, as the import of the parent would set them.
    """
    parts = name.split(".")
    locations: list[str] | None = None
    for i in range(len(parts)):
        full = ".".join(parts[: i + 1])
        try:
            if i == 0:
                spec = _find_top(full)
            elif locations is None:  # the parent is a module, not a package
                spec = None
            else:
                spec = PathFinder.find_spec(full, locations)
        except (ImportError, ValueError, OSError):
            spec = None
        if spec is None:
            return full
        # an imported package's __path__ is what its import made it (extend_path and the like)
        path = getattr(sys.modules.get(full), "__path__", None)
        path = spec.submodule_search_locations if path is None else path
        locations = None if path is None else list(path)
    return None


def _find_top(name: str):
    try:
        spec = importlib.util.find_spec(name)  # a top-level name: finds it, imports nothing
    except (ImportError, ValueError):  # ValueError: in sys.modules without a __spec__
        spec = None
    return spec or PathFinder.find_spec(name, _search_path())
