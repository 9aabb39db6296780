"""Helpers for tests that build real networks (imported by every network test package).

`leftovers(run_id, state)` lists anything of a run still on the machine: OVS
bridges tagged with its id, interfaces named after it, node shells, its
controller and relay processes, its Docker containers, its run directory.
`cli(...)` runs the `testbed` command as a user would. `built(...)` is the
body of a module-scoped fixture that builds one small network from YAML text;
`run_workload(...)` runs one workload entry of it and scores it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MINIMAL = REPO / "topologies" / "minimal.yaml"


def minimal_plain(directory) -> "Path":
    """minimal.yaml with `ran: {backend: off}`, written into `directory`: its UEs plain hosts on the clinic
    switch, so the slice rules sit on their own ports (the 5G path has tests/integration/test_ran_path.py)."""
    path = Path(directory) / "minimal-plain.yaml"
    path.write_text(MINIMAL.read_text().replace("\nran:\n", "\nran:\n  backend: \"off\"\n", 1))
    return path
TESTBED = [sys.executable, "-m", "testbed.cli.main"]


def network_unavailable() -> str | None:
    """Why real-network tests cannot run here (None: they can)."""
    from testbed import platform

    if os.geteuid() != 0:
        return "network tests need root"
    ok, detail = platform.ovs_running()
    return None if ok else detail


LABEL_RUN = "org.medalliance.testbed.run"  # the Docker label every container of a run carries


def _processes() -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process, from /proc directly (no `ps` output to parse)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile
                continue
            out.append((int(d.name), [a.decode(errors="replace") for a in argv if a]))
    return out


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone meanwhile, or not ours to read
        return {}
    return dict(kv.decode(errors="replace").split("=", 1) for kv in raw if b"=" in kv)


def _run_processes(run_id: str, state: Path) -> list[str]:
    """Controller and relay processes of the run, and node shells (Mininet names them)."""
    plan = (state / run_id / "plan.json").resolve()
    prefix = f"tb{run_id}"
    found = []
    for pid, argv in _processes():
        if pid == os.getpid():
            continue
        line = " ".join(argv)
        if f"mininet:{prefix}" in line:
            found.append(f"process {pid} {line}")
        elif "testbed.engine.osken_main" in argv:
            # the controller is told its run only through TESTBED_PLAN (<state>/<run>/plan.json)
            p = _environ(pid).get("TESTBED_PLAN")
            if p and (Path(p).resolve() == plan or Path(p).parent.name == run_id):
                found.append(f"controller {pid} {line}")
        elif "testbed.impair.relay" in argv:
            ifs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--if-a", "--if-b")]
            if any(name.startswith(prefix) for name in ifs):
                found.append(f"relay {pid} {line}")
    return found


def _run_containers(run_id: str) -> list[str]:
    """Docker containers labelled with the run (none where there is no Docker engine)."""
    if shutil.which("docker") is None:
        return []
    try:
        r = subprocess.run(["docker", "ps", "-a", "--filter", f"label={LABEL_RUN}={run_id}",
                            "--format", "{{.Names}}"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return [f"docker did not answer: cannot tell whether containers of {run_id} are left"]
    if r.returncode != 0:
        if "Cannot connect to the Docker daemon" in r.stderr:
            return []  # no engine running: it holds no containers
        return [f"docker ps failed: {r.stderr.strip()}"]
    return [f"container {name}" for name in r.stdout.split()]


def leftovers(run_id: str, state: Path) -> list[str]:
    """Everything of run `run_id` still present on the machine (empty list = clean)."""
    found = []
    r = subprocess.run(["ovs-vsctl", "--bare", "--columns=name", "find", "Bridge",
                        f"external_ids:testbed-run={run_id}"], capture_output=True, text=True)
    found += [f"bridge {b}" for b in r.stdout.split()]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"interface {ln.split(':')[1].strip()}" for ln in links.splitlines()
              if ln.split(":")[1].strip().startswith(f"tb{run_id}")]
    found += _run_processes(run_id, state)
    found += _run_containers(run_id)
    if (state / run_id).exists():
        found.append(f"run dir {state / run_id}")
    return found


def cli(*args: str, check: bool = True, timeout: float = 180, **kw) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*TESTBED, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"testbed {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def built(topo: str, filename: str, tmp_path_factory, on_disk: bool = False) -> Iterator:
    """Yield a running `Testbed` of YAML text `topo` (in its own state dir); afterwards, assert it left nothing.

    The body of a module-scoped fixture: `yield from built(TOPO, "x.yaml", tmp_path_factory)`; `on_disk`
    builds it from a file of that name, for tests that drive it with the CLI too.
    It skips (with the reason) where root or Open vSwitch is missing: the autouse
    `network` fixture comes too late for a module-scoped one.
    """
    import pytest

    from testbed import Testbed
    from testbed.topology.loader import parse_text

    if why := network_unavailable():
        pytest.skip(why)
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TESTBED_STATE_DIR", str(state))
        if on_disk:  # the CLI (`testbed fault inject --run ...`) reads the run's topology file again
            path = tmp_path_factory.mktemp("topology") / filename
            path.write_text(topo)
        with (Testbed.from_file(path) if on_disk else Testbed(parse_text(topo, filename))) as t:
            rid = t.run_id
            yield t
        assert leftovers(rid, state) == []


def run_workload(tb, name: str, progress: Callable[[str], None] = lambda _msg: None):
    """Run the workload entry `name` of the testbed's file and score it as `testbed run` does.

    Returns (entry, measurements, verdicts).
    """
    from testbed.workloads import get, params_of, slo

    [w] = [w for w in tb.topo.workloads if w.name == name]
    measured = get(w.type).run(tb, w, params_of(w), progress)
    return w, measured, [c for m in measured for c in slo.verdicts(m, w.slo)]
