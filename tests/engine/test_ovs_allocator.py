"""Which allocator ovs-vswitchd runs with (doctor and the report say it): read from the daemon's memory map,
and what scripts/ovs-start.sh does about it."""
from pathlib import Path

from testbed import platform
from testbed.platform import allocator_of

GLIBC_MAPS = """\
55d0c0000000-55d0c0100000 r-xp 00000000 08:01 1234 /usr/sbin/ovs-vswitchd
7f00a0000000-7f00a0200000 r-xp 00000000 08:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
"""
TCMALLOC_MAPS = GLIBC_MAPS + "7f00b0000000-7f00b0040000 r-xp 00000000 08:01 77 " \
                             "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n"


def test_the_allocator_is_read_from_the_maps():
    assert allocator_of(GLIBC_MAPS) == "glibc"
    assert allocator_of(TCMALLOC_MAPS) == "tcmalloc"
    assert allocator_of(GLIBC_MAPS + "7f 00 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n") == "jemalloc"


def test_a_daemon_that_is_not_running_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(platform, "OVS_PIDFILE", tmp_path / "none.pid")
    assert platform.ovs_allocator() == "unknown"
    (tmp_path / "bad.pid").write_text("not a pid\n")
    monkeypatch.setattr(platform, "OVS_PIDFILE", tmp_path / "bad.pid")
    assert platform.ovs_allocator() == "unknown"


def test_this_process_reads_as_glibc(tmp_path, monkeypatch):
    """The real path: a pid file naming a live process (this one, which preloads nothing)."""
    import os

    pid = tmp_path / "me.pid"
    pid.write_text(f"{os.getpid()}\n")
    monkeypatch.setattr(platform, "OVS_PIDFILE", pid)
    assert platform.ovs_allocator() == "glibc"


def test_setup_installs_and_preloads_tcmalloc():
    root = Path(__file__).resolve().parents[2]
    start = (root / "scripts" / "ovs-start.sh").read_text()
    assert "libtcmalloc_minimal.so.4" in start and "LD_PRELOAD" in start
    assert "libtcmalloc-minimal4" in (root / "scripts" / "setup.sh").read_text()
    assert "libtcmalloc-minimal4" in (root / "Dockerfile").read_text()
