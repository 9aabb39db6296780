"""Docker nodes: one container per node, attached to the emulated network by the testbed.

The design is Containernet's, on stock Mininet: each container is started with
`--network none` (no Docker bridge, no NAT, so no route to the host's network),
then the node's Mininet shell is started with `mnexec -a <container pid>`: it
joins the container's network *and* mount namespaces, so Mininet's veth links,
addresses and our per-node configuration land in the container, and every
command run through the node (the shell, `testbed exec`, workloads, probes) sees
the container's file system. The shell and every process started in the node
are also moved into the container's cgroups, so the node's CPU and memory limits
apply to them, and `docker update` (`testbed node set`) changes them live.

The runtime that uses these mechanics is testbed.engine.runtimes.docker.
The testbed's own agents (`python -m traffic.sink` ...) run with the host's
interpreter path; the container gets the testbed's code and virtualenv
bind-mounted read-only at the same paths, so they run inside it unchanged when
the image has the same Python minor version (the default node image does).

Every container carries the run id as a label and a name derived from it
(`tb<run>-<node>`); teardown and `testbed clean` remove exactly those.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import BuildError, PlatformError, UsageError
from testbed.ran.forkserver import EnterSpec

LABEL_RUN = "org.medalliance.testbed.run"
LABEL_NODE = "org.medalliance.testbed.node"
LABEL_PREFIX = "org.medalliance.testbed."  # owner labels: LABEL_PREFIX + owner-pid / owner-start (engine/ownership.py)
# CPU weight of a node that serves many (a gNB its cell's UEs; a UPF, the core: every session) against a
# plain node's 1024. Each container is a CPU group of its own, so under load a gNB got what one terminal
# got while carrying its whole cell: during the probe (every terminal busy at once, 2 cores) the gNBs got
# ~0.02 of a core each, their UEs went 5 s without a heartbeat answer and dropped their radio link.
SERVING_CPU_SHARES = 8192
SERVING_ROLES = ("gnb", "upf", "core")
START_WORKERS = 4  # parallel `docker run`s: dockerd on 2 cores gains little beyond this
DOCKER_TIMEOUT_S = 120
TUN_DEVICE = "/dev/net/tun"
# cgroup v1 controllers a node's processes join (not devices/freezer: the shell is the testbed's tool)
_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio")
# sh on the host: move itself into the cgroups given before `--`, then become the command after it
_JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" 2>/dev/null; shift; done; shift; exec "$@"'


def container_name(run_id: str, node: str) -> str:
    return f"tb{run_id}-{node}"


def _docker(args: list[str], timeout: float = DOCKER_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


# -- before the build -----------------------------------------------------------
def check_engine() -> None:
    """PlatformError, with the fix, unless a Docker engine answers."""
    if shutil.which("docker") is None:
        raise PlatformError("runtime: docker nodes need the Docker engine; run scripts/docker-engine.sh (as root)")
    r = _docker(["info", "--format", "{{.ServerVersion}}"], timeout=30)
    if r.returncode != 0:
        raise PlatformError("the Docker engine is not running; start it with scripts/docker-engine.sh "
                            f"({r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'docker info failed'})")


def ensure_images(images: set[str], emit: Callable[[str], None]) -> dict[str, float]:
    """Build the default node image if needed (cached by its inputs); other images must exist locally.

    Returns image -> seconds spent making sure it exists.
    """
    from testbed.images import NODE_IMAGE, ImageBuildError, build_image, image_exists

    spent: dict[str, float] = {}
    for image in sorted(images):
        t0 = time.monotonic()
        try:
            if image == NODE_IMAGE.name:
                build_image(NODE_IMAGE, on_event=emit)
            elif not image_exists(image):
                raise UsageError(f"image {image!r} is not in the local Docker engine and no registry is "
                                 f"reachable; build or load it first (`docker load`, `docker build`), or use "
                                 f"the testbed's own {NODE_IMAGE.name} (`testbed images build`)")
        except ImageBuildError as exc:
            raise BuildError(f"node image {image}: {exc}") from exc
        spent[image] = time.monotonic() - t0
    return spent


def testbed_mounts() -> list[str]:
    """Host paths holding the testbed's code, its virtualenv and the interpreter the venv is made from
    (bind-mounted read-only, same paths). A system interpreter (/usr) is not mounted: the image's own
    python3 of the same version then serves (the default node image is bookworm, as Debian hosts are)."""
    import testbed

    roots = {Path(testbed.__file__).resolve().parents[1], Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    paths = sorted(roots, key=lambda p: len(p.parts))
    keep: list[Path] = []
    for p in paths:
        if str(p) in ("/", "/usr", "/usr/local"):
            continue  # a system interpreter: never mount over the image's /usr
        if not any(p == k or k in p.parents for k in keep):
            keep.append(p)
    return [str(p) for p in keep]


# -- containers -----------------------------------------------------------------
@dataclass(frozen=True)
class ContainerSpec:
    """Everything `docker run` needs for one node."""

    name: str
    run_id: str
    node: str
    image: str
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    cpus: float | None = None
    memory: int | None = None  # bytes
    cpu_shares: int | None = None  # relative CPU weight under contention (Docker's default: 1024)
    hosts_file: str | None = None
    ro_mounts: list[str] = field(default_factory=list)
    owner: dict[str, str] = field(default_factory=dict)  # ownership.owner_fields of the run's owner

    def run_argv(self) -> list[str]:
        a = ["docker", "run", "-d", "--name", self.name, "--hostname", self.node[:63],
             "--network", "none", "--init", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
             "--label", f"{LABEL_RUN}={self.run_id}", "--label", f"{LABEL_NODE}={self.node}",
             *[x for k, v in self.owner.items() for x in ("--label", f"{LABEL_PREFIX}{k.removeprefix('testbed-')}={v}")],
             # the testbed's hosts file, and no IPv6 chatter (/proc/sys is read-only in a container)
             "--sysctl", "net.ipv6.conf.all.disable_ipv6=1", "--sysctl", "net.ipv6.conf.default.disable_ipv6=1"]
        if os.path.exists(TUN_DEVICE):  # the 5G programs' session and N6 interfaces are TUNs
            a += ["--device", TUN_DEVICE]
        if self.hosts_file:
            a += ["-v", f"{self.hosts_file}:/etc/hosts:ro"]
        for p in self.ro_mounts:
            a += ["-v", f"{p}:{p}:ro"]
        for v in self.volumes:
            a += ["-v", v]
        for k, v in self.env.items():
            a += ["-e", f"{k}={v}"]
        if self.cpus:
            a += ["--cpus", f"{self.cpus:g}"]
        if self.cpu_shares:
            a += ["--cpu-shares", str(self.cpu_shares)]
        if self.memory:
            a += ["--memory", str(self.memory), "--memory-swap", str(self.memory)]
        return [*a, self.image, *(self.command or ["sleep", "infinity"])]


@dataclass(frozen=True)
class Container:
    name: str
    id: str
    pid: int
    seconds: float  # docker run + inspect
    image: str = ""


def spec_for(topo, node, run_id: str, hosts_file: Path, base_dir: Path,
             owner: dict[str, str] | None = None) -> ContainerSpec:
    from testbed import kinds
    from testbed.images import NODE_IMAGE
    from testbed.topology.resolve import node_settings

    s = node_settings(topo, node)
    vols = []
    for v in node.volumes:
        src, _, rest = v.partition(":")
        if src.startswith(("./", "../")):
            src = str((base_dir / src).resolve())
        vols.append(f"{src}:{rest}" if rest else src)
    run_dir = hosts_file.parent  # certificates, per-node scratch space and logs of the run's services
    vols.append(f"{run_dir}:{run_dir}")
    return ContainerSpec(name=container_name(run_id, node.name), run_id=run_id, node=node.name,
                         image=s.image or NODE_IMAGE.name, command=node.command, env=dict(node.env),
                         volumes=vols, cpus=s.cpus, memory=s.memory, hosts_file=str(hosts_file),
                         cpu_shares=SERVING_CPU_SHARES if kinds.get(node.kind).ran_role in SERVING_ROLES else None,
                         ro_mounts=testbed_mounts(), owner=dict(owner or {}))


def start_container(spec: ContainerSpec) -> Container:
    t0 = time.monotonic()
    r = subprocess.run(spec.run_argv(), capture_output=True, text=True, timeout=DOCKER_TIMEOUT_S)
    if r.returncode != 0:
        raise BuildError(f"starting container {spec.name} ({spec.image}) failed: {r.stderr.strip()[-800:]}")
    r = _docker(["inspect", "-f", "{{.Id}} {{.State.Pid}} {{.State.Running}}", spec.name], timeout=30)
    cid, pid, running = (r.stdout.split() + ["", "0", "false"])[:3]
    if r.returncode != 0 or running != "true" or int(pid) <= 0:
        logs = _docker(["logs", "--tail", "5", spec.name], timeout=30)
        raise BuildError(f"container {spec.name} ({spec.image}) is not running after start; its command must keep "
                         f"running (default: sleep infinity). Last output: {(logs.stdout + logs.stderr).strip()[-500:]}")
    return Container(spec.name, cid, int(pid), time.monotonic() - t0, spec.image)


def start_containers(specs: list[ContainerSpec], on_started: Callable[[Container], None] | None = None,
                     workers: int = START_WORKERS) -> dict[str, Container]:
    """Start containers in parallel; node name -> Container. The first failure is raised
    after the others finished (the caller's teardown removes every one by name)."""
    out: dict[str, Container] = {}
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(start_container, s): s for s in specs}
        for fut in futures:
            try:
                c = fut.result()
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
                continue
            out[futures[fut].node] = c
            if on_started:
                on_started(c)
    if errors:
        raise errors[0]
    return out


def check_tools(pid: int, image: str) -> None:
    """The node shell and Mininet need bash, ip and ifconfig in the image: say so clearly if missing."""
    missing = []
    for tool in ("bash", "ip", "ifconfig"):
        r = subprocess.run([*nsenter_argv(pid), "sh", "-c", f"command -v {tool}"], capture_output=True, timeout=30)
        if r.returncode != 0:
            missing.append(tool)
    if missing:
        raise BuildError(f"image {image} lacks {', '.join(missing)} (needed to configure a node: install bash, "
                         f"iproute2 and net-tools in it, or use the testbed's node image)")


# -- cgroups and entering a node ------------------------------------------------------
def cgroup_procs_files(pid: int) -> list[str]:
    """The cgroup.procs files of the resource cgroups process `pid` is in (v1 or v2)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []
    v1, v2 = [], []
    for line in lines:
        hier, ctrls, path = line.split(":", 2)
        if hier == "0" and not ctrls:
            base = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
            v2.append(f"{base}{path}/cgroup.procs")
        elif any(c in _CONTROLLERS for c in ctrls.split(",")):
            v1.append(f"/sys/fs/cgroup/{ctrls}{path}/cgroup.procs")
    files = v1 or v2  # hybrid: the v1 controllers hold the limits
    return [f for f in dict.fromkeys(files) if os.path.exists(f)]


def join_cgroups(pid: int, like_pid: int) -> None:
    """Move process `pid` into the resource cgroups of `like_pid` (a container's init)."""
    for f in cgroup_procs_files(like_pid):
        try:
            with open(f, "w") as fh:
                fh.write(str(pid))
        except OSError as exc:
            raise BuildError(f"moving the node shell into the container's cgroup {f} failed: {exc}") from exc


def container_env(pid: int) -> list[str]:
    """The environment of process `pid` as KEY=VALUE strings (a container's: image ENV plus `env:`)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return []
    return [v for v in raw.decode(errors="replace").split("\0") if "=" in v and not v.startswith("PS1=")]


def enter_argv(pid: int, argv: list[str], container: str | int | None = None) -> list[str]:
    """argv run in a docker node: the namespaces of its shell `pid`, the PID namespace of its container
    (name or init pid), its cgroups (so limits apply) and the container's environment."""
    spec = enter_spec(pid, container)
    ns = nsenter_argv(pid) + ([f"--pid=/proc/{spec.pid_ns_of}/ns/pid"] if spec.pid_ns_of else [])
    return ["sh", "-c", _JOIN_CGROUPS, "tb-enter", *spec.cgroup_procs, "--", *ns, "env", "-i", *(spec.env or ()),
            *argv]


def enter_spec(pid: int, container: str | int | None = None) -> EnterSpec:
    """How a process enters a docker node (shell `pid`, container name or init pid): enter_argv's command
    line is made from it, and the 5G fork server forks into it (testbed.ran.forkserver)."""
    cpid = container if isinstance(container, int) else container_pid(container) if container else None
    return EnterSpec(pid, namespaces=NSENTER_NAMESPACES, pid_ns_of=cpid,
                     cgroup_procs=tuple(cgroup_procs_files(pid)), env=tuple(container_env(pid)))


NSENTER_NAMESPACES = ("net", "mnt", "uts", "ipc")  # nsenter_argv's -n -m -u -i


def nsenter_argv(pid: int) -> list[str]:
    """Enter the network, mount, UTS and IPC namespaces of `pid` (`mnexec -a` does only the first two).

    enter_argv adds the container's PID namespace (nsenter then forks: the command is its child, and
    /proc/self works as in `docker exec`). The node's Mininet shell stays in the host's PID namespace:
    Mininet passes host PIDs to `ip link ... netns PID` from it."""
    return ["nsenter", "-t", str(pid), "-n", "-m", "-u", "-i"]


def container_pid(name: str) -> int | None:
    r = _docker(["inspect", "-f", "{{.State.Pid}}", name], timeout=30)
    return int(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip().isdigit() and int(r.stdout) > 0 else None


# -- while running: limits ------------------------------------------------------
MIN_MEMORY = 6 << 20  # Docker refuses a memory limit below 6 MB
MIN_CPUS, MAX_CPUS = 0.01, 1024.0  # Docker's --cpus takes hundredths


def parse_limits(items: list[str]) -> dict[str, float | int]:
    """["cpus=2", "memory=4g"] -> {"cpus": 2.0, "memory": 4294967296}; UsageError naming the bad item."""
    from testbed.units import parse_size

    out: dict[str, float | int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise UsageError(f"expected KEY=VALUE, got {item!r} (keys: cpus, memory)")
        try:
            if key == "cpus":
                cpus = float(value)
                # float() takes 'nan' and 'inf' too: neither is a CPU count docker understands
                if not math.isfinite(cpus) or not MIN_CPUS <= cpus <= MAX_CPUS:
                    raise ValueError(f"must be a number of CPUs from {MIN_CPUS:g} to {MAX_CPUS:g}")
                out["cpus"] = cpus
            elif key == "memory":
                memory = parse_size(value)
                if not MIN_MEMORY <= memory < 1 << 63:
                    raise ValueError("must be at least 6m (Docker's minimum) and below 8 EiB")
                out["memory"] = memory
            else:
                raise UsageError(f"unknown setting {key!r} (keys: cpus, memory)")
        except ValueError as exc:
            raise UsageError(f"{item}: {exc}") from None
    if not out:
        raise UsageError("nothing to set (e.g. cpus=2 memory=4g)")
    return out


def set_limits(container: str, cpus: float | None = None, memory: int | None = None) -> dict:
    """`docker update` a running container; returns its limits afterwards."""
    args = ["update"]
    if cpus is not None:
        args += ["--cpus", f"{cpus:g}"]
    if memory is not None:
        args += ["--memory", str(memory), "--memory-swap", str(memory)]
    r = _docker([*args, container], timeout=60)
    if r.returncode != 0 and memory is not None and "memoryswap" in r.stderr.lower():
        # lowering: docker wants memory changed before memory-swap; raising: the other way round
        r = _docker(["update", "--memory-swap", str(memory), container], timeout=60)
        if r.returncode == 0:
            r = _docker([*args, container], timeout=60)
    if r.returncode != 0:
        raise BuildError(f"docker update {container} failed: {r.stderr.strip()}")
    return limits(container)


def limits(container: str) -> dict:
    r = _docker(["inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}", container], timeout=30)
    if r.returncode != 0:
        raise BuildError(f"docker inspect {container} failed: {r.stderr.strip()}")
    nano, mem = (int(x) for x in r.stdout.split())
    return {"cpus": nano / 1e9 if nano else None, "memory": mem or None}


# -- teardown and clean ---------------------------------------------------------
def containers_of_run(run_id: str) -> list[str]:
    """Names of containers labelled with run `run_id` (any state)."""
    if shutil.which("docker") is None:
        return []
    r = _docker(["ps", "-a", "--filter", f"label={LABEL_RUN}={run_id}", "--format", "{{.Names}}"], timeout=30)
    return r.stdout.split() if r.returncode == 0 else []


def labelled_containers() -> dict[str, list[tuple[str, dict[str, str]]]]:
    """run id -> (name, owner fields) of every container carrying our run label (never any other container)."""
    if shutil.which("docker") is None:
        return {}
    fmt = "{{.Names}}\t{{.Labels}}"
    r = _docker(["ps", "-a", "--filter", f"label={LABEL_RUN}", "--format", fmt], timeout=30)
    out: dict[str, list[tuple[str, dict[str, str]]]] = {}
    if r.returncode == 0:
        for line in r.stdout.splitlines():
            name, _, labels = line.partition("\t")
            kv = dict(x.split("=", 1) for x in labels.split(",") if "=" in x)
            rid = kv.get(LABEL_RUN)
            if rid:
                owner = {"testbed-" + k[len(LABEL_PREFIX):]: v for k, v in kv.items()
                         if k.startswith(LABEL_PREFIX + "owner-")}
                out.setdefault(rid, []).append((name, owner))
    return out


def runs_in_flight(names: list[str], proc_root: str = "/proc") -> list[int]:
    """PIDs of `docker run --name NAME` clients still running for any of `names`.

    A run killed during container start leaves these behind: the client finishes its
    call on its own, and the engine creates the container after whoever cleans up
    has already removed (nothing) by that name. Teardown waits for them first.
    """
    wanted = set(names)
    out = []
    for entry in Path(proc_root).iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if len(args) > 3 and Path(args[0]).name == "docker" and args[1] == "run" and "--name" in args:
            i = args.index("--name")
            if i + 1 < len(args) and args[i + 1] in wanted:
                out.append(int(entry.name))
    return out


def wait_runs_in_flight(names: list[str], timeout: float = DOCKER_TIMEOUT_S) -> None:
    """Block until no `docker run` for `names` is in flight (bounded: a client gives up after its timeout too)."""
    deadline = time.monotonic() + timeout
    while runs_in_flight(names) and time.monotonic() < deadline:
        time.sleep(0.1)


def remove_containers(names: list[str], workers: int = START_WORKERS) -> None:
    """`docker rm -f -v` in a few parallel calls: the engine removes one call's containers in turn."""
    if not names or shutil.which("docker") is None:
        return
    chunks = [names[i::workers] for i in range(workers) if names[i::workers]]
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        list(pool.map(lambda c: _docker(["rm", "-f", "-v", *c], timeout=180), chunks))
