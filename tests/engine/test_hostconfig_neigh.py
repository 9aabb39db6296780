"""Large alliances get room in the machine's one ARP table (every namespace shares it; only the machine's own
namespace may change its limits: a per-namespace sysctl does not exist, which an earlier version relied on)."""
from __future__ import annotations

import subprocess

import pytest

from testbed import platform
from testbed.errors import PlatformError

NTABLE = "inet arp_cache \n    thresh1 128 thresh2 {} thresh3 {} gc_int 30000 \n    refcnt 1 reachable 21432\n"


class FakeKernel:
    """`ip ntable show` and `sysctl -w` against limits held here; `settable`: the machine's own namespace."""

    def __init__(self, thresh2: int, thresh3: int, settable: bool):
        self.t2, self.t3, self.settable = thresh2, thresh3, settable
        self.calls: list[list[str]] = []

    def __call__(self, cmd, timeout=10):
        self.calls.append(cmd)
        if cmd[:2] == ["ip", "ntable"]:
            return subprocess.CompletedProcess(cmd, 0, NTABLE.format(self.t2, self.t3), "")
        if not self.settable:
            return subprocess.CompletedProcess(cmd, 255, "", "sysctl: cannot stat /proc/sys/net/ipv4/neigh/...")
        for arg in cmd[2:]:
            key, value = arg.split("=")
            setattr(self, "t" + key[-1], int(value))
        return subprocess.CompletedProcess(cmd, 0, "", "")


def test_the_limits_are_read_from_the_kernels_table():
    out = subprocess.run(["ip", "ntable", "show", "name", "arp_cache"], capture_output=True, text=True).stdout
    if "thresh3" not in out:
        pytest.skip("this kernel does not show its ARP table")
    t1, t2, t3 = platform.neighbour_limits()
    assert 0 < t1 <= t2 <= t3 and f"thresh3 {t3}" in out


def test_room_already_changes_nothing(monkeypatch):
    k = FakeKernel(512, 1024, settable=True)
    monkeypatch.setattr(platform, "_run", k)
    assert platform.raise_neighbour_limits(500) is None
    assert not [c for c in k.calls if c[0] == "sysctl"]


def test_a_large_alliance_raises_the_limits_and_never_lowers_one(monkeypatch):
    k = FakeKernel(512, 100_000, settable=True)
    monkeypatch.setattr(platform, "_run", k)
    level, message = platform.raise_neighbour_limits(6000)
    assert level == "info" and (k.t2, k.t3) == (6000, 100_000) and "512/100000 to 6000/100000" in message


def test_in_a_container_too_many_entries_fail_the_build_and_fewer_warn(monkeypatch):
    k = FakeKernel(512, 1024, settable=False)
    monkeypatch.setattr(platform, "_run", k)
    with pytest.raises(PlatformError, match=r"needs about 6000.*gc_thresh2=6000 net.ipv4.neigh.default.gc_thresh3=12000"):
        platform.raise_neighbour_limits(6000)
    level, message = platform.raise_neighbour_limits(900)
    assert level == "warning" and "evicts above 512" in message and (k.t2, k.t3) == (512, 1024)
