"""The run directory: where a run records what it created, for other processes.

`testbed down/status/exec/clean` run in other processes than `testbed up`; they
learn about a run only from its manifest (JSON, written atomically). The manifest
lists every PID, bridge and interface the run made, so teardown never guesses.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "TESTBED_STATE_DIR"
DEFAULT_STATE_DIR = "/run/testbed"


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV, DEFAULT_STATE_DIR))


@dataclass
class NodeRecord:
    name: str
    internal: str
    kind: str
    site: str | None = None
    ip: str | None = None
    mac: str | None = None
    pid: int | None = None  # shell whose namespaces are the node's (mnexec -a PID)
    pid_start: float | None = None
    netns: int | None = None  # inode of the node's network namespace
    dpid: str | None = None
    runtime: str = "namespace"
    container: str | None = None


@dataclass
class Manifest:
    """What a run is and what it owns. Written at every stage of the build."""

    run_id: str
    topology: str
    name: str
    supervisor_pid: int
    supervisor_start: float  # /proc start time, so a recycled PID is not mistaken for us
    state: str = "building"  # building | up | stopping | failed | down
    created: float = field(default_factory=time.time)
    datapath: str = ""
    tso: bool = False  # userspace TSO in force: unshaped links carry 64 KB TCP frames (testbed.netdev)
    impairment_backend: str = ""
    controller: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    bridges: list[str] = field(default_factory=list)
    root_interfaces: list[str] = field(default_factory=list)
    pids: dict[str, list[float]] = field(default_factory=dict)  # extra processes: label -> [pid, start]
    containers: list[str] = field(default_factory=list)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)  # impaired links: "A:B" -> how to reach
    wires: dict[str, list[str]] = field(default_factory=dict)  # every link: "A:B" -> its root-namespace ends
    # switch-to-switch links built as OVS patch ports: "A:B" -> [[bridge, interface, ofport], ...] per end
    patches: dict[str, list[list[Any]]] = field(default_factory=dict)
    report_dir: str | None = None

    @property
    def dir(self) -> Path:
        return state_dir() / self.run_id

    def save_throttled(self, interval: float = 0.5) -> None:
        """Save at most every `interval` s: during a build, after every node, cheaply.

        A crash between two saves can only lose node shells, which die with their
        pty when this process dies; bridges and ports are recorded before creation.
        """
        now = time.monotonic()
        if now - getattr(self, "_last_save", 0.0) >= interval:
            self.save()

    def save(self) -> None:
        self._last_save = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "manifest.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.dir / "manifest.json")

    @classmethod
    def load(cls, run_dir: Path) -> "Manifest":
        data = json.loads((run_dir / "manifest.json").read_text())
        data["nodes"] = {k: NodeRecord(**v) for k, v in data["nodes"].items()}
        return cls(**data)


def process_start_time(pid: int) -> float | None:
    """Start time of a running process in clock ticks since boot (field 22 of /proc/PID/stat).

    None for a process that is gone or a zombie (exited, not yet reaped by its parent).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return float(fields[19])


def is_alive(pid: int | None, start: float | None = None) -> bool:
    """True if `pid` runs and (when given) is the same process that started at `start`."""
    if not pid:
        return False
    started = process_start_time(pid)
    if started is None:
        return False
    return start is None or started == start


def all_runs() -> list[Manifest]:
    """Every run with a manifest under the state directory, oldest first."""
    root = state_dir()
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if (d / "manifest.json").is_file():
                try:
                    out.append(Manifest.load(d))
                except (ValueError, TypeError, OSError):
                    continue
    return sorted(out, key=lambda m: m.created)


def up_log(pid: int) -> Path:
    """Where `testbed up -d` (process `pid`) logs its background build until the run has a directory."""
    return state_dir() / f"up-{pid}.log"


def stale_up_logs() -> list[Path]:
    """Build logs of `testbed up -d` calls that have exited without moving them into a run directory
    (their start failed; the path was printed with the error). `testbed clean` removes them."""
    out = []
    for p in sorted(state_dir().glob("up-*.log")) if state_dir().is_dir() else []:
        pid = p.stem.removeprefix("up-")
        if pid.isdigit() and not is_alive(int(pid)):
            out.append(p)
    return out


def live(m: Manifest) -> bool:
    """Is the process that owns this run still running?"""
    return is_alive(m.supervisor_pid, m.supervisor_start)
