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
# AUTO and BUNDLED_APPS are re-exported: the loader and the engine share one set of names and rules
from testbed.topology.controllerapp import AUTO, BUNDLED_APPS, AppNotFound, locate  # noqa: F401


def read_status(path: Path) -> dict:
    """The app's status file ({} while it has not written one)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def wait_generation(status_path: Path, dpids: set[str], generation: int, timeout: float) -> float:
    """Block until every dpid reports plan `generation` applied (live update); returns seconds waited.

    Reads only the status file, so `testbed slice grant` in another process can wait too.
    Raises TimeoutError naming the generation.
    """
    t0 = time.monotonic()
    while True:
        applied = read_status(status_path).get("applied", {})
        if all(applied.get(d, 0) >= generation for d in dpids):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"plan generation {generation} not applied within {timeout:.0f}s")
        time.sleep(0.05)


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
        return read_status(self.status_path)

    def install_times(self) -> dict[str, float]:
        """From the status file: seconds from first switch connection to last rules installed
        (`rules_installed_s`) and the slowest single switch (`rules_installed_max_switch_s`)."""
        st = self.status()
        conn, ready = st.get("connected", {}), st.get("ready", {})
        both = [d for d in ready if d in conn]
        if not both:
            return {}
        return {"rules_installed_s": max(ready[d] for d in both) - min(conn[d] for d in both),
                "rules_installed_max_switch_s": max(ready[d] - conn[d] for d in both)}

    def stop(self, timeout: float = 5.0) -> None:
        """Stop this controller process (it is ours: we started it)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)

    def wait_ready(self, dpids: set[str], timeout: float, on_progress=None) -> float:
        """Block until every dpid reports its rules installed; returns seconds waited."""
        t0 = time.monotonic()
        last = -1
        while True:
            if self.proc.poll() is not None:
                raise BuildError(f"controller exited with code {self.proc.returncode}; {self._log_end()}")
            ready = set(self.status().get("ready", {})) & dpids
            if len(ready) != last and on_progress:
                on_progress(len(ready), len(dpids))
                last = len(ready)
            if ready == dpids:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                missing = ", ".join(sorted(dpids - ready)[:5])
                why = ("; your app installed no flow entry on them (a switch is ready once it holds one, e.g. "
                       "a table-miss rule)" if self.status().get("observer") else "")
                raise BuildError(f"switches did not get their rules within {timeout:.0f}s (missing {missing}){why}; "
                                 f"{self._log_end()}")
            time.sleep(0.05)

    def _log_end(self) -> str:
        """The end of the controller's log, in the message itself: the log is in the run directory,
        which the teardown after a failed build removes before anyone reads the error."""
        if not self.log_path.is_file():
            return f"its log {self.log_path} is gone"
        tail = _tail(self.log_path)
        return (f"the end of its log ({self.log_path.name}, removed with the run directory at teardown):\n{tail}"
                if tail.strip() else "it wrote nothing to its log")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def resolve_app(app: str, topology_dir: Path, sliced: bool = False) -> str:
    """A bundled app name ("auto": by whether the topology has slices), a module name,
    or a .py path relative to the topology file: by the rules the loader checks it with
    (testbed.topology.controllerapp). BuildError if a .py file does not exist."""
    try:
        return locate(app, topology_dir, sliced)
    except AppNotFound as exc:
        raise BuildError(f"controller app: {exc}") from None


def write_plan(run_dir: Path, plan: dict) -> Path:
    """Write the plan atomically: a running app may be watching the file."""
    plan_path = run_dir / "plan.json"
    tmp = run_dir / "plan.json.tmp"
    tmp.write_text(json.dumps(plan))
    os.replace(tmp, plan_path)
    return plan_path


def start_controller(app_module: str, run_dir: Path, plan: dict | None, port: int | None = None) -> ControllerProcess:
    """Start the app on `port` (a free one if None). plan None: keep the run's current plan.json
    (a restart must install the latest generation, grants included)."""
    plan_path = write_plan(run_dir, plan) if plan is not None else run_dir / "plan.json"
    status_path = run_dir / "controller-status.json"
    status_path.unlink(missing_ok=True)  # a restart must not read the dead process's readiness
    log_path = run_dir / "controller.log"
    port = port or free_port()
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
