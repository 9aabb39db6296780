"""The engine resolves a controller app by the same rules the loader checks it by, and a
controller that dies or stalls says why without pointing at a log teardown removes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testbed.engine import controller
from testbed.engine.controller import ControllerProcess, resolve_app
from testbed.errors import BuildError


def test_bundled_and_auto() -> None:
    assert resolve_app("auto", Path("."), sliced=True) == "controllers.slicing"
    assert resolve_app("auto", Path("."), sliced=False) == "controllers.forwarding"
    assert resolve_app("allow-all", Path(".")) == "controllers.allow_all"
    assert resolve_app("stateless", Path(".")) == "controllers.stateless"


def test_py_path_relative_to_the_topology_dir(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "a.py").write_text("")
    assert resolve_app("apps/a.py", tmp_path) == str((tmp_path / "apps" / "a.py").resolve())
    with pytest.raises(BuildError, match="missing.py"):
        resolve_app("apps/missing.py", tmp_path)


def test_module_name_passes_through() -> None:
    assert resolve_app("controllers.examples.ryu_l2_switch", Path(".")) == "controllers.examples.ryu_l2_switch"


def test_bundled_apps_are_the_loaders() -> None:
    from testbed.topology import controllerapp

    assert controller.BUNDLED_APPS is controllerapp.BUNDLED_APPS and controller.AUTO == controllerapp.AUTO


class _Exited:
    returncode = 1

    def poll(self):
        return 1


def _log(tmp_path: Path) -> Path:
    log = tmp_path / "controller.log"
    log.write_text("starting\nTraceback (most recent call last):\nModuleNotFoundError: No module named 'nosuch'\n")
    return log


def test_exited_controller_error_carries_the_log_tail(tmp_path: Path) -> None:
    log = _log(tmp_path)
    cp = ControllerProcess(_Exited(), 6653, tmp_path / "status.json", log)
    with pytest.raises(BuildError) as info:
        cp.wait_ready({"1"}, timeout=1)
    msg = str(info.value)
    assert "code 1" in msg
    assert "ModuleNotFoundError: No module named 'nosuch'" in msg
    assert f"see {log}" not in msg  # teardown deletes the run directory before anyone can look


def test_stalled_controller_error_carries_the_log_tail(tmp_path: Path) -> None:
    log = _log(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        cp = ControllerProcess(proc, 6653, tmp_path / "status.json", log)
        with pytest.raises(BuildError) as info:
            cp.wait_ready({"1"}, timeout=0.2)
    finally:
        proc.kill()
        proc.wait()
    msg = str(info.value)
    assert "did not get their rules" in msg
    assert "No module named 'nosuch'" in msg
    assert f"see {log}" not in msg
