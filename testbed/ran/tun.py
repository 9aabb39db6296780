"""TUN interfaces for PDU sessions (UE: uesimtunN) and the UPF's N6 side (upfn6), set up with iproute2.

A TUN opened without IFF_PERSIST lives as long as its descriptor: when the
program exits, however it exits, the interface and every route through it
disappear with it, so there is nothing to clean up after a crash. Packets are
read and written whole (IFF_NO_PI: no packet-information prefix), non-blocking.
"""
from __future__ import annotations

import fcntl
import os
import struct
import subprocess

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_NAME = 15
DEFAULT_MTU = 1400  # UERANSIM's uesimtun MTU: room for the RLS/GTP-U headers inside a 1500-octet link


class TunError(OSError):
    pass


def open_tun(name: str) -> int:
    """A new TUN interface `name` (not yet up); returns its non-blocking descriptor."""
    if not name or len(name) > MAX_NAME:
        raise TunError(f"interface name {name!r}: 1 to {MAX_NAME} characters")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise TunError(exc.errno, f"cannot create TUN {name}: {exc.strerror}") from exc
    return fd


def ip(*args: str) -> None:
    """Run one `ip` command; TunError with its message when it fails."""
    try:
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TunError(f"ip {' '.join(args)}: {exc}") from exc
    if r.returncode != 0:
        raise TunError(f"ip {' '.join(args)}: {r.stderr.strip()}")


def bring_up(name: str, address: str | None = None, mtu: int = DEFAULT_MTU, txqueuelen: int = 1000,
             routes: list[str] = ()) -> None:
    """Address (a /32: the session's own), MTU and queue length, up, then routes for `routes` (addresses or
    prefixes) through it, from that address. All in one `ip -batch` call: one process spawn per interface.

    The queue holds what the kernel routes into the TUN until the program reads
    it: 1000 packets, as an Ethernet device (a TUN's default 500 drops bursts
    of a busy N6 side while the UPF waits for a CPU).
    """
    cmds = []
    if address:
        cmds.append(f"addr add {address}/32 dev {name}")
    cmds.append(f"link set dev {name} mtu {mtu} txqueuelen {txqueuelen} up")
    src = f" src {address}" if address else ""
    cmds += [f"route replace {d} dev {name}{src}" for d in routes]
    _batch(cmds)


def _batch(cmds: list[str]) -> None:
    try:
        r = subprocess.run(["ip", "-batch", "-"], input="\n".join(cmds) + "\n", capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TunError(f"ip -batch: {exc}") from exc
    if r.returncode != 0:
        raise TunError(f"ip -batch ({'; '.join(cmds)}): {r.stderr.strip()}")


def read_sysctl(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def write_sysctl(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(value)
