"""Run apps written for Ryu unmodified: `import ryu.X` gives the module `os_ken.X`.

Ryu does not install on Python 3.11; os-ken is its maintained fork with the same
app API under another package name. The controller process
(testbed/engine/osken_main.py) calls `install()` before it loads any app, and only
there: the rest of the testbed never sees a `ryu` module.

How: a meta-path finder, first on `sys.meta_path`, answers every `ryu` and
`ryu.*` import with the already imported (or now imported) `os_ken` module of
the same dotted path, so both names are one module object: a class, an event
or a config option defined once (`ryu.controller.ofp_event.EventOFPPacketIn is
os_ken.controller.ofp_event.EventOFPPacketIn`, `ryu.cfg.CONF is os_ken.cfg.CONF`).
It must come before the path finder: that one would otherwise find
`os_ken/base/app_manager.py` under the name `ryu.base.app_manager` (the aliased
package's `__path__` is os-ken's) and load a second, separate copy of it.

The few names os-ken renamed get their Ryu names as aliases too (`RENAMED`):
`app_manager.RyuApp` is `OSKenApp`, `exception.RyuException` is `OSKenException`.

Nothing is aliased where a real `ryu` package is importable: Ryu then serves
itself. Modules that os-ken 4 no longer ships (Ryu's sample apps under
`ryu.app`, `ryu.app.wsgi`, `ryu.cmd`) fail with an ImportError that says so.
Differences that remain: os-ken's `hub` runs native threads by default where
Ryu ran eventlet green threads (`hub.spawn`, `hub.sleep`, `hub.Event`... keep
their names), and `cfg.CONF` is parsed for project `os_ken`.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

ALIAS, TARGET = "ryu", "os_ken"

# (module under os_ken, Ryu's name, os-ken's name): classes os-ken renamed.
RENAMED: list[tuple[str, str, str]] = [
    ("os_ken.base.app_manager", "RyuApp", "OSKenApp"),
    ("os_ken.exception", "RyuException", "OSKenException"),
]


def target_name(fullname: str) -> str | None:
    """'ryu.base.app_manager' -> 'os_ken.base.app_manager'; None for any other module."""
    if fullname == ALIAS:
        return TARGET
    if fullname.startswith(ALIAS + "."):
        return TARGET + fullname[len(ALIAS):]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Hands the import system the os_ken module itself instead of creating one."""

    def __init__(self, target: str):
        self.target = target
        self._spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__  # the import system overwrites __spec__ next: restored in exec_module
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Already executed under its own name; only undo the __spec__ the import system set,
        # so the module keeps describing os_ken (relative imports, reload, pickling).
        if self._spec is not None:
            module.__spec__ = self._spec


class RyuAliasFinder(importlib.abc.MetaPathFinder):
    """`ryu` and `ryu.*` -> the matching `os_ken` module (see the module docstring)."""

    def find_spec(self, fullname, path=None, target=None):
        name = target_name(fullname)
        if name is None:
            return None
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # a parent package is missing in os-ken
            found = None
        if found is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: Ryu is not installed here (it does not run on Python "
                f"{sys.version_info.major}.{sys.version_info.minor}) and os-ken, which runs Ryu apps in its "
                f"place, has no {name!r} (os-ken 4 ships no sample apps, no ryu.app.wsgi, no ryu.cmd)",
                name=fullname)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(name),
                                               is_package=found.submodule_search_locations is not None)


def real_ryu_present() -> bool:
    """Is a real Ryu importable (without our alias)?"""
    if any(isinstance(f, RyuAliasFinder) for f in sys.meta_path):
        return False  # we answer for it: it was absent when installed
    mod = sys.modules.get(ALIAS)
    if mod is not None:
        return getattr(mod, "__name__", None) == ALIAS
    try:
        return importlib.util.find_spec(ALIAS) is not None
    except (ImportError, ValueError):
        return False


def install() -> bool:
    """Alias `ryu` to `os_ken` in this process, unless a real Ryu is importable.

    Returns True if the alias is active (now or from an earlier call). Call it in
    the controller process only, before loading apps.
    """
    if any(isinstance(f, RyuAliasFinder) for f in sys.meta_path):
        return True
    if real_ryu_present():
        return False
    for module, ryu_name, osken_name in RENAMED:
        mod = importlib.import_module(module)
        if not hasattr(mod, ryu_name):
            setattr(mod, ryu_name, getattr(mod, osken_name))
    sys.meta_path.insert(0, RyuAliasFinder())
    return True


def uninstall() -> None:
    """Remove the finder and every `ryu` entry from sys.modules (tests)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, RyuAliasFinder)]
    for name in [n for n in sys.modules if target_name(n) is not None]:
        del sys.modules[name]
