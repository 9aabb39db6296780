"""The controller process of a run: start it, wait for the switches, stop it.

One os-ken process per run, on a free port on 127.0.0.1, its log in the run
directory. Readiness is not guessed: the app writes which switches have all
their rules installed (barrier replies), and we wait for every datapath id.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import BuildError

BUNDLED_APPS = {"forwarding": "controllers.forwarding"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ControllerProcess:
    proc: subprocess.Popen
    port: int
    status_path: Path
    log_path: Path

    def status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def wait_ready(self, dpids: set[str], timeout: float, on_progress=None) -> float:
        """Block until every dpid reports its rules installed; returns seconds waited."""
        t0 = time.monotonic()
        last = -1
        while True:
            if self.proc.poll() is not None:
                raise BuildError(f"controller exited with code {self.proc.returncode}; see {self.log_path}:\n"
                                 + _tail(self.log_path))
            ready = set(self.status().get("ready", {})) & dpids
            if len(ready) != last and on_progress:
                on_progress(len(ready), len(dpids))
                last = len(ready)
            if ready == dpids:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                missing = ", ".join(sorted(dpids - ready)[:5])
                raise BuildError(f"switches did not get their rules within {timeout:.0f}s (missing {missing}); "
                                 f"see {self.log_path}")
            time.sleep(0.05)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def resolve_app(app: str, topology_dir: Path) -> str:
    """A bundled app name, a module name, or a .py path relative to the topology file."""
    if app in BUNDLED_APPS:
        return BUNDLED_APPS[app]
    if app.endswith(".py"):
        p = Path(app)
        p = p if p.is_absolute() else (topology_dir / p)
        if not p.is_file():
            raise BuildError(f"controller app file not found: {p}")
        return str(p.resolve())
    return app


def start_controller(app_module: str, run_dir: Path, plan: dict) -> ControllerProcess:
    plan_path = run_dir / "plan.json"
    plan_path.write_text(json.dumps(plan))
    status_path = run_dir / "controller-status.json"
    log_path = run_dir / "controller.log"
    port = free_port()
    env = dict(os.environ, TESTBED_PLAN=str(plan_path), TESTBED_STATUS=str(status_path))
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "testbed.engine.osken_main", "--port", str(port), app_module],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # Ctrl-C in the terminal must not kill it before teardown
        )
    finally:
        log.close()
    return ControllerProcess(proc, port, status_path, log_path)
