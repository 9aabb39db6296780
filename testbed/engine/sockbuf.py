"""Bigger receive buffers for the switches' port sockets: the default raised while the run's ports open.

Open vSwitch's userspace datapath reads every port through an AF_PACKET socket,
which takes the kernel's default receive buffer (net.core.rmem_default, 208 KiB
here) when it is opened. A burst of the 5G path or of the prober overflows it and
the frames are dropped before OVS sees them: issue 9's diagnosis (every TCP
retransmit on the 5G path was one), and the scattered echoes and probe frames a
loaded run loses. ovs-vswitchd has no setting for it, so the default is raised
while the run's ports are added and put back right after: only sockets opened
in that window get the bigger buffer. A lock keeps two runs starting at once
from restoring each other's raised value.
"""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RMEM_DEFAULT = Path("/proc/sys/net/core/rmem_default")
# Measured (bench/ran_bench.py, iperf3 through the 5G path): 208 KiB drops thousands of segments a run;
# 1 MiB drops none and is as fast (4 MiB: no drops either, 5% slower: the longer queues)
PORT_SOCKET_BUF = 1 << 20
# With userspace TSO a TCP frame is up to 64 KB, so 1 MiB holds a burst of about 8 of them. Measured
# (bench/impaired_path_bench.py, 3 switches, the middle link 10 ms each way, 64 MiB TCP buffers; drops from
# `ss -0 -m`): 1 MiB 5.4 Gbit/s, 8 MiB 6.9, 16 MiB 7.5-8.1 (200-400 frames dropped at the ports a run,
# 9-20 thousand segments retransmitted), 32 MiB 7.6-7.8 (none); unimpaired and 0 ms unchanged (10.4-12.1).
# A limit, not an allocation: only a port the daemon falls behind on holds that much
TSO_PORT_SOCKET_BUF = 16 << 20
LOCK = Path("/run/testbed-rmem.lock")


def port_room(tso: bool) -> int:
    """The receive room a run's port sockets open with: more where userspace TSO moves 64 KB frames."""
    return TSO_PORT_SOCKET_BUF if tso else PORT_SOCKET_BUF


@contextmanager
def port_socket_buffers(size: int = PORT_SOCKET_BUF, sysctl: Path = RMEM_DEFAULT,
                        lock: Path = LOCK) -> Iterator[int | None]:
    """Raise the default receive buffer to `size` for the block (never lower it); yields the value it
    restores afterwards, or None when it changed nothing (already as large, or not writable)."""
    try:
        lock_file = open(lock, "w")
    except OSError:
        yield None
        return
    with lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            old = int(sysctl.read_text().strip())
            if old >= size:
                old = None
            else:
                sysctl.write_text(str(size))
        except (OSError, ValueError):
            old = None
        try:
            yield old
        finally:
            if old is not None:
                try:
                    sysctl.write_text(str(old))
                except OSError:
                    pass
