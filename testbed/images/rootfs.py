"""Make a Debian root file system with debootstrap, and get rid of it safely.

debootstrap mounts /proc and /sys inside the new root (and, in some containers,
bind-mounts host device nodes under /dev). If it is killed, those mounts stay,
and a plain recursive delete would then walk into the host's /proc, /sys or
/dev. So the cleanup unmounts everything below the directory first and refuses
to delete while anything is still mounted there.
"""
from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from testbed.images.errors import ImageBuildError
from testbed.images.spec import ExtraFile

DEBOOTSTRAP_TIMEOUT_S = 1200
POST_STEP_TIMEOUT_S = 300

EventSink = Callable[[str], None]

# Per-package chatter from debootstrap; everything else is a phase worth reporting.
_QUIET = re.compile(r"^I: (Retrieving|Validating|Extracting) |^I: (Unpacking|Configuring) (?!the )")

_CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C",
    "DEBIAN_FRONTEND": "noninteractive",
    "HOME": "/root",
}


def require_tools() -> None:
    """Fail early, with the fix, when the build cannot work on this machine."""
    if os.geteuid() != 0:
        raise ImageBuildError("building a node image needs root (debootstrap, chroot)")
    for tool in ("debootstrap", "chroot", "tar"):
        if shutil.which(tool) is None:
            hint = "; run scripts/docker-engine.sh" if tool == "debootstrap" else ""
            raise ImageBuildError(f"{tool} is not installed{hint}")


def debootstrap(
    target: Path,
    suite: str,
    mirror: str,
    packages: Sequence[str],
    variant: str,
    emit: EventSink,
    timeout: float = DEBOOTSTRAP_TIMEOUT_S,
) -> None:
    """Install `suite` plus `packages` into the empty directory `target`."""
    cmd = ["debootstrap", f"--variant={variant}", "--components=main"]
    if packages:
        cmd.append("--include=" + ",".join(packages))
    cmd += [suite, str(target), mirror]
    emit(f"debootstrap {suite} from {mirror} ({len(packages)} extra packages)")
    _run_streaming(cmd, emit, timeout, what="debootstrap", log=target / "debootstrap" / "debootstrap.log")


def write_extra_files(root: Path, files: Sequence[ExtraFile]) -> None:
    """Write `files` into the new root, never through a symlink that leaves it."""
    for f in files:
        dest = root / f.path.lstrip("/")
        existing = dest.parent
        while not existing.exists():
            existing = existing.parent
        if not _inside(existing, root):
            raise ImageBuildError(f"extra file {f.path} would be written outside the image root")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not _inside(dest.parent, root):
            raise ImageBuildError(f"extra file {f.path} would be written outside the image root")
        if dest.is_symlink():
            dest.unlink()  # replace the link itself; never write through it
        dest.write_bytes(f.content)
        dest.chmod(f.mode)


def run_post_steps(root: Path, steps: Sequence[Sequence[str]], emit: EventSink) -> None:
    """Run each argv inside the new root with chroot (no /proc, no network)."""
    for step in steps:
        emit("post-step: " + " ".join(step))
        try:
            proc = subprocess.run(
                ["chroot", str(root), *step],
                env=_CHROOT_ENV,
                capture_output=True,
                text=True,
                timeout=POST_STEP_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ImageBuildError(f"post-step {list(step)} timed out") from exc
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip()[-2000:]
            raise ImageBuildError(f"post-step {list(step)} failed (exit {proc.returncode}):\n{tail}")


def remove_tree(path: Path) -> None:
    """Unmount whatever is mounted below `path`, then delete it."""
    if not path.exists():
        return
    for mnt in sorted(mounts_below(path), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mnt], capture_output=True, check=False)
    left = mounts_below(path)
    if left:
        raise ImageBuildError(f"not removing {path}: still mounted below it: {', '.join(left)}")
    shutil.rmtree(path)


def mounts_below(path: Path) -> list[str]:
    """Mount points strictly inside `path` (from /proc/self/mountinfo)."""
    base = os.path.realpath(path).rstrip("/") + "/"
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                mnt = _unescape(line.split()[4])
                if mnt.startswith(base):
                    found.append(mnt)
    except OSError:
        pass
    return found


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _inside(p: Path, root: Path) -> bool:
    try:
        Path(os.path.realpath(p)).relative_to(os.path.realpath(root))
        return True
    except ValueError:
        return False


def _run_streaming(cmd: list[str], emit: EventSink, timeout: float, what: str, log: Path) -> None:
    """Run `cmd`, forward its phase lines to `emit`, kill it after `timeout` seconds."""
    tail: collections.deque[str] = collections.deque(maxlen=30)
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env={**os.environ, "LC_ALL": "C"},
    )
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, _kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if not line:
                continue
            tail.append(line)
            if not _QUIET.match(line):
                emit(f"{what}: {line}")
        rc = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if timed_out.is_set():
        raise ImageBuildError(f"{what} did not finish within {timeout:.0f} s")
    if rc != 0:
        detail = "\n".join(tail)
        if log.is_file():
            detail += "\n--- " + str(log) + " (last lines) ---\n" + "\n".join(
                log.read_text(errors="replace").splitlines()[-20:]
            )
        raise ImageBuildError(f"{what} failed (exit {rc}):\n{detail}")
