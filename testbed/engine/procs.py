"""Processes a run owns: find them by recorded PID + start time or by namespace.

A PID alone is not proof of ownership (PIDs are recycled), so every recorded PID
carries its /proc start time. Processes started inside a node are found by the
node's network-namespace inode, which this run created, never by name.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from testbed.engine.rundir import is_alive, process_start_time


def netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def pids_in_netns(inodes: set[int]) -> list[int]:
    """Every process whose network namespace is one of `inodes`."""
    if not inodes:
        return []
    me = os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != me:
            ino = netns_inode(int(entry.name))
            if ino in inodes:
                out.append(int(entry.name))
    return out


def kill_verified(pids: list[tuple[int, float | None]], grace: float = 2.0, group: bool = False,
                  sig: int = signal.SIGTERM) -> None:
    """Send `sig` to each (pid, start) still alive and ours, wait up to `grace`, then SIGKILL."""
    mine = [(p, s) for p, s in pids if is_alive(p, s)]
    sig_send(mine, sig, group)
    deadline = time.monotonic() + grace
    while mine and time.monotonic() < deadline:
        _reap(mine)
        mine = [(p, s) for p, s in mine if is_alive(p, s)]
        if mine:
            time.sleep(0.02)
    sig_send(mine, signal.SIGKILL, group)
    _reap(mine)


def sig_send(pids: list[tuple[int, float | None]], sig: int, group: bool) -> None:
    for p, _ in pids:
        try:
            if group:
                os.killpg(p, sig)
            else:
                os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(p, sig)
            except (ProcessLookupError, PermissionError):
                pass


def _reap(pids: list[tuple[int, float | None]]) -> None:
    """Collect exited children of ours so they do not linger as zombies."""
    for p, _ in pids:
        try:
            os.waitpid(p, os.WNOHANG)
        except ChildProcessError:
            pass


def record(pid: int) -> list[float]:
    """[pid, start] as stored in the manifest."""
    return [pid, process_start_time(pid) or 0.0]
