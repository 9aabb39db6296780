"""Start many 5G programs from one process that has already imported them: a fork server.

    python -m testbed.ran.forkserver --preload testbed.ran.gnb [--preload ...]

Why: a gNB (and the core) import pycrate's NGAP, about 0.3 s of CPU each time,
and the reference alliance starts 32 gNBs at once on a 2-core machine: that
import was most of its 5G start. The server imports the modules once; each
program is then a fork of it that enters its node (cgroups, namespaces, the
container's environment, as `docker exec` or `nsenter` would) and runs the
module as `__main__`, with its pages shared until written.

Protocol: JSON lines. The server writes `{"ready": true}` once its modules are
imported. A request on its stdin

    {"id": "gnb-1", "module": "testbed.ran.gnb", "args": ["--config", ...],
     "log": "/run/.../gnb-1.log", "enter": {EnterSpec fields}}

is answered `{"id": ..., "pid": N}` (or `{"id": ..., "error": "..."}`), and the
program's end later by `{"id": ..., "exit": code}` (a signal's death: minus its
number, as subprocess reports it). The server exits at the end of its stdin,
leaving its programs running (the node teardown ends them, as any program in
the node). The child order follows nsenter: cgroups first (their files are on
the host), the namespace files opened while still on the host, then ipc, uts,
net, pid, mnt; entering a PID namespace takes one more fork (only children move
into it), the first child waiting for the program and exiting with its code.

Stdlib only, and single-threaded (a multi-threaded process cannot enter a mount
namespace). `ForkServer` is the engine's side.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import threading
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

NS_ORDER = ("ipc", "uts", "net", "pid", "mnt")  # nsenter's order (pid before mnt: /proc is the host's until then)
POLL_S = 0.05
PR_SET_MM, PR_SET_MM_MAP = 35, 14
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class EnterSpec:
    """How to enter a node: the namespaces of `pid`, the PID namespace of `pid_ns_of` (a container's
    init), the cgroups whose `cgroup.procs` files are listed, and `env` instead of the server's own."""
    pid: int
    namespaces: tuple[str, ...] = ("net", "mnt")
    pid_ns_of: int | None = None
    cgroup_procs: tuple[str, ...] = ()
    env: tuple[str, ...] | None = None  # KEY=VALUE strings; None keeps the server's environment

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EnterSpec":
        return cls(int(d["pid"]), tuple(d.get("namespaces", ())), d.get("pid_ns_of"),
                   tuple(d.get("cgroup_procs", ())), None if d.get("env") is None else tuple(d["env"]))


# -- the server ------------------------------------------------------------------------------------------------


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class _MmMap(ctypes.Structure):
    """struct prctl_mm_map (linux/prctl.h): PR_SET_MM_MAP needs no CAP_SYS_RESOURCE, which a container may lack."""
    _fields_ = [(n, ctypes.c_uint64) for n in ("start_code", "end_code", "start_data", "end_data", "start_brk", "brk",
                                               "start_stack", "arg_start", "arg_end", "env_start", "env_end")] + [
        ("auxv", ctypes.c_void_p), ("auxv_size", ctypes.c_uint32), ("exe_fd", ctypes.c_uint32)]


_TITLES: list[ctypes.Array] = []  # the memory /proc/PID/cmdline points at must outlive the process's use of it


def _stat_fields() -> list[str]:
    """/proc/self/stat after the command name (read before entering a mount namespace whose /proc does not
    show this process; a fork keeps these addresses)."""
    st = open("/proc/self/stat").read()
    return st[st.rindex(")") + 2:].split()


def set_cmdline(argv: list[str], stat: list[str] | None = None) -> bool:
    """Make /proc/self/cmdline (what ps, pgrep and the testbed's own process scans read) show `argv`, so a
    forked gNB reads as `python -m testbed.ran.gnb --config ...`, not as the server. Best effort: False if the
    kernel refuses."""
    try:
        f = stat if stat is not None else _stat_fields()

        def field_(n: int) -> int:  # proc(5) numbering: f[0] is field 3
            return int(f[n - 3])

        raw = b"\0".join(a.encode() for a in argv) + b"\0"
        buf = ctypes.create_string_buffer(raw, len(raw))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_long]
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        start = ctypes.addressof(buf)
        mm = _MmMap(field_(26), field_(27), field_(45), field_(46), field_(47), libc.sbrk(0) or 0, field_(28),
                    start, start + len(raw), field_(50), field_(51), None, 0, 0xFFFFFFFF)
        if libc.prctl(PR_SET_MM, PR_SET_MM_MAP, ctypes.addressof(mm), ctypes.sizeof(mm), 0) != 0:
            return False
        _TITLES.append(buf)
        return True
    except (OSError, ValueError, IndexError, AttributeError):
        return False


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


def _run_module(module: str, args: list[str]) -> int:
    """Run `module` as `python -m module args` would, in this (forked) process; its exit code."""
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - the program's own crash, reported as python -m would
        traceback.print_exc()
        return 1


def _child(req: dict[str, Any]) -> int:
    """In the forked child: become the program inside its node. Returns the exit code (never raises)."""
    try:
        os.setsid()
        log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        spec = EnterSpec.from_dict(req["enter"])
        stat = _stat_fields()
        for path in spec.cgroup_procs:
            try:
                with open(path, "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                pass  # as `docker exec` into a container without that controller: the limits of the others apply
        paths = {ns: f"/proc/{spec.pid}/ns/{ns}" for ns in spec.namespaces if ns != "pid"}
        if spec.pid_ns_of:
            paths["pid"] = f"/proc/{spec.pid_ns_of}/ns/pid"
        fds = [os.open(paths[ns], os.O_RDONLY) for ns in NS_ORDER if ns in paths]  # all opened on the host
        for fd in fds:
            _setns(fd)
            os.close(fd)
        if spec.env is not None:
            os.environ.clear()
            os.environ.update(v.split("=", 1) for v in spec.env if "=" in v)
        argv = [sys.executable, "-m", req["module"], *req.get("args", [])]
        if spec.pid_ns_of:  # only a child of ours lives in the PID namespace entered
            pid = os.fork()
            if pid:
                set_cmdline(["tb-enter", "--", *argv], stat)
                signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
                while True:
                    try:
                        _, status = os.waitpid(pid, 0)
                        break
                    except InterruptedError:
                        continue
                code = _exit_code(status)
                return code if code >= 0 else 128 - code
        set_cmdline(argv, stat)
        return _run_module(req["module"], list(req.get("args", [])))
    except BaseException:  # noqa: BLE001 - whatever failed, the log says it and the server reports the exit
        traceback.print_exc()
        return 1


def _check(req: Any) -> None:
    """A request the child can act on (it has no way to report a missing key but its log)."""
    if not isinstance(req, dict):
        raise ValueError("a request is a JSON object")
    for key, kind in (("id", str), ("module", str), ("log", str), ("enter", dict), ("args", list)):
        if not isinstance(req.get(key), kind):
            raise ValueError(f"request field {key!r} must be a {kind.__name__}")
    EnterSpec.from_dict(req["enter"])


def _spawn(req: dict[str, Any]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = _child(req)
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    return pid


def serve(preload: list[str], inp=None, out=None) -> int:
    """The server loop: import `preload`, then fork one program per request line until stdin ends."""
    inp = inp if inp is not None else sys.stdin
    out = out if out is not None else sys.stdout

    def say(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg) + "\n")
        out.flush()

    for module in preload:
        importlib.import_module(module)
    # What was imported lives as long as the programs: out of the collector's sight, a gNB's full collections
    # do not walk pycrate's ASN.1 objects (a pause in its packet loop), and do not write to the shared pages
    gc.collect()
    gc.freeze()
    say({"ready": True})
    children: dict[int, str] = {}
    fd = inp.fileno()
    buf = b""
    open_input = True
    while open_input:
        readable, _, _ = select.select([fd], [], [], POLL_S)
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_input = False
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                req: Any = None
                try:
                    req = json.loads(line)
                    _check(req)
                    pid = _spawn(req)
                except Exception as exc:  # noqa: BLE001 - a bad request is answered, the server goes on
                    say({"id": req.get("id") if isinstance(req, dict) else None, "error": str(exc)})
                    continue
                children[pid] = req["id"]
                say({"id": req["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            say({"id": children.pop(pid, None), "exit": _exit_code(status)})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fork server for the built-in 5G programs (JSON lines on stdin).")
    ap.add_argument("--preload", action="append", default=[], help="module to import before forking")
    a = ap.parse_args(argv)
    return serve(a.preload)


# -- the engine's side -----------------------------------------------------------------------------------------


@dataclass
class Forked:
    """A program started by the server, with the part of subprocess.Popen the engine uses."""
    id: str
    pid: int | None = None
    returncode: int | None = None
    error: str | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def poll(self) -> int | None:
        return self.returncode


class ForkServer:
    """Owns one server process; `spawn` a program, `close` when every program is started.

    A program's end is known only while the server runs (it is their parent); after `close` the
    programs go on, reparented, and end with their node."""

    def __init__(self, preload: list[str], python: str = sys.executable,
                 on_line: Callable[[str], None] | None = None) -> None:
        self.proc = subprocess.Popen([python, "-m", "testbed.ran.forkserver",
                                      *[x for m in preload for x in ("--preload", m)]],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.programs: dict[str, Forked] = {}
        self.broken: str | None = None  # why the engine stopped using it (it then starts programs itself)
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="forkserver", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if msg.get("ready"):
                self._ready.set()
                continue
            with self._lock:
                p = self.programs.get(str(msg.get("id")))
            if p is None:
                continue
            if "pid" in msg:
                p.pid = int(msg["pid"])
            if "error" in msg:
                p.error, p.returncode = str(msg["error"]), 1
            if "exit" in msg:
                p.returncode = int(msg["exit"])
            p._done.set()
        self._ready.set()  # the server ended: nobody waits for a ready line that will not come

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> str | None:
        """None once the server has imported its modules, else why it cannot be used."""
        if not self._ready.wait(timeout):
            return f"not ready within {timeout:.0f} s"
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace")[-800:] if self.proc.stderr else ""
            return f"exited with code {self.proc.returncode}: {err.strip()}"
        return None

    def spawn(self, name: str, module: str, args: list[str], log: str, enter: EnterSpec,
              timeout: float = 30.0) -> Forked:
        """Start `python -m module args` inside the node `enter` describes, its output appended to `log`."""
        p = Forked(name)
        with self._lock:
            self.programs[name] = p
        req = {"id": name, "module": module, "args": args, "log": log, "enter": asdict(enter)}
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        if not p._done.wait(timeout) or p.pid is None and p.error is None:
            p.error, p.returncode = p.error or "the fork server did not answer", 1
        return p

    def close(self) -> None:
        """End the server (its programs go on); idempotent."""
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
