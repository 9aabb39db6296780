"""Who owns a resource, read from the resource itself: its run id, its owner's PID and start time.

`testbed clean` may run with another state directory than the run that made a
bridge or a container (each test uses its own), so a missing manifest proves
nothing. Every OVS bridge (external_ids) and container (labels) therefore
carries its run id and the PID + /proc start time of the process that owns the
run; clean removes a resource only when that owner is dead. A resource without
owner fields was made by an older testbed and is treated as its run's manifest
says, or as dead when no manifest knows it.
"""
from __future__ import annotations

import json
import shutil
import subprocess

from testbed.engine.rundir import is_alive

RUN = "testbed-run"
NODE = "testbed-node"
OWNER_PID = "testbed-owner-pid"
OWNER_START = "testbed-owner-start"


def owner_fields(pid: int, start: float) -> dict[str, str]:
    """The owner's identity as strings (OVS external_ids / Docker labels hold strings)."""
    return {OWNER_PID: str(pid), OWNER_START: repr(float(start))}


def owner_alive(fields: dict[str, str]) -> bool | None:
    """True/False from the owner fields; None when the resource carries none."""
    pid, start = fields.get(OWNER_PID), fields.get(OWNER_START)
    if not pid or not start:
        return None
    try:
        return is_alive(int(pid), float(start))
    except ValueError:
        return None


def tagged_bridges() -> list[tuple[str, dict[str, str]]]:
    """(bridge, external_ids) of every OVS bridge a testbed run tagged (never anyone else's)."""
    if not shutil.which("ovs-vsctl"):
        return []
    r = subprocess.run(["ovs-vsctl", "--timeout=5", "--format=json", "--columns=name,external_ids", "list",
                        "Bridge"], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        return []
    out = []
    for name, ext in json.loads(r.stdout).get("data", []):
        ids = dict(ext[1]) if isinstance(ext, list) and ext and ext[0] == "map" else {}
        if ids.get(RUN):
            out.append((name, ids))
    return out


def stray_bridges(known_runs: set[str]) -> list[tuple[str, str]]:
    """(bridge, run id) of tagged bridges whose run has no manifest here and whose owner is dead."""
    return [(name, ids[RUN]) for name, ids in tagged_bridges()
            if ids[RUN] not in known_runs and owner_alive(ids) is not True]


# Helper processes of a run outside its nodes, and how each names its run directory.
_HELPERS = {"testbed.engine.osken_main": "controller", "testbed.impair.relay": "relay"}


def helpers(proc_root: str = "/proc") -> list[tuple[int, str, str]]:
    """(pid, what, run dir) of every controller and relay process of any run.

    A controller knows its run directory from its environment (TESTBED_PLAN), a
    relay from its control socket (--control RUN_DIR/links/N.sock). The process
    itself says which run it serves, so it is found even when the run died
    before it recorded the PID (a SIGKILL between `Popen` and the manifest save).
    """
    from pathlib import Path

    out = []
    for entry in Path(proc_root).iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        what = next((w for m, w in _HELPERS.items() if m in args), None)
        if what is None:
            continue
        run_dir = None
        if what == "controller":
            try:
                env = dict(x.split("=", 1) for x in
                           (entry / "environ").read_bytes().decode(errors="replace").split("\0") if "=" in x)
            except OSError:
                continue
            run_dir = Path(env["TESTBED_PLAN"]).parent if "TESTBED_PLAN" in env else None
        elif "--control" in args and args.index("--control") + 1 < len(args):
            run_dir = Path(args[args.index("--control") + 1]).parent.parent
        if run_dir is not None:
            out.append((int(entry.name), what, str(run_dir)))
    return out


def helpers_of(run_dir: str, proc_root: str = "/proc") -> list[int]:
    """PIDs of the controller and relay processes serving the run in `run_dir` (teardown ends them all,
    recorded or not)."""
    from pathlib import Path

    want = Path(run_dir).resolve()
    return [pid for pid, _, d in helpers(proc_root) if Path(d).resolve() == want]


def stray_helpers(proc_root: str = "/proc") -> list[tuple[int, str, str]]:
    """(pid, what, run dir) of controller and relay processes whose run directory is gone.

    While that directory exists, the run's own teardown (or clean's, through its
    manifest) ends the process; once it is gone, nothing else would: a crashed
    test whose state directory was deleted leaves such processes behind.
    """
    from pathlib import Path

    return [h for h in helpers(proc_root) if not Path(h[2]).exists()]
