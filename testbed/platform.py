"""What this machine's kernel and packages offer, and which path the testbed takes.

Kernels differ (no openvswitch module here, no netem on WSL2 and minimal RHEL,
no SCTP in some CI runners), so every feature is probed rather than assumed, and
the choice made is recorded in `testbed doctor` and in every report.
Probes never touch the host's own network: they run in a throwaway namespace.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from testbed.errors import PlatformError
from testbed.impair.backends import choose_backend
from testbed.impair.netem import netem_available


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = False


@dataclass
class PlatformReport:
    checks: list[Check] = field(default_factory=list)
    datapath: str = "netdev"  # OVS datapath_type we will use: 'system' (kernel) or 'netdev' (userspace)
    impairment: str = "userspace"  # 'netem' or 'userspace'

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if c.required)

    def get(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


def _run(cmd: list[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(cmd, 127, "", str(exc))


def _ns_probe(script: str) -> bool:
    """Run a shell snippet in a fresh, empty network namespace that vanishes afterwards."""
    if not shutil.which("unshare"):
        return False
    return _run(["unshare", "-n", "sh", "-c", script]).returncode == 0


@lru_cache(maxsize=1)
def ovs_kernel_module() -> bool:
    if Path("/sys/module/openvswitch").exists():
        return True
    return bool(shutil.which("modprobe")) and _run(["modprobe", "-n", "-q", "openvswitch"]).returncode == 0


def htb_available() -> bool:
    return _ns_probe("ip link add d0 type veth peer name d1 && tc qdisc add dev d0 root handle 1: htb default 1")


def sctp_available() -> bool:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    except OSError:
        return False
    s.close()
    return True


def ovs_running() -> tuple[bool, str]:
    if not shutil.which("ovs-vsctl"):
        return False, "ovs-vsctl not installed (apt-get install openvswitch-switch)"
    r = _run(["ovs-vsctl", "--timeout=3", "show"])
    if r.returncode != 0:
        return False, "ovsdb-server/ovs-vswitchd not running (/usr/share/openvswitch/scripts/ovs-ctl start)"
    v = _run(["ovs-vsctl", "--version"]).stdout.split("\n")[0]
    return True, v


OVS_LOG = Path("/var/log/openvswitch/ovs-vswitchd.log")
TSO_LINE = "userspace_tso|INFO|Userspace TCP Segmentation Offloading support enabled"
START_LINE = "|bridge|INFO|ovs-vswitchd (Open vSwitch)"
STARTUP_LINES = 300  # a start's block when the daemon's first line is not in the tail read
TSO_LOG_TAIL = 4 << 20  # the log's last 4 MiB hold the daemon's latest start on any machine we saw


def userspace_tso() -> tuple[bool | None, str]:
    """Whether the running ovs-vswitchd moves TCP super-frames between its ports (userspace TSO).

    Why it matters: with it, a TCP sender's 64 KB segments cross every switch as
    one frame, several times faster than MTU frames one by one; without it the
    userspace datapath cannot take checksum-offloaded frames at all, so every
    interface must run with offloads off. The daemon reads
    `other_config:userspace-tso-enable` once, when it starts: set later, it
    turns on for the ports added since and not the others, a mix where TCP
    breaks. So the setting is trusted only if the daemon's log shows it in
    force at its latest start. Returns (True, why) in force, (False, why) off,
    (None, why) mixed: restart ovs-vswitchd. TESTBED_TSO=0 treats it as off.
    """
    if os.environ.get("TESTBED_TSO") == "0":
        return False, "off (TESTBED_TSO=0): every interface runs with offloads off"
    r = _run(["ovs-vsctl", "--timeout=3", "get", "Open_vSwitch", ".", "other_config:userspace-tso-enable"])
    if r.returncode != 0 or r.stdout.strip().strip('"') != "true":
        return False, "off (other_config:userspace-tso-enable is not true; scripts/setup.sh sets it)"
    try:
        with OVS_LOG.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TSO_LOG_TAIL))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return True, "on (configured; the daemon's log is not readable to confirm it)"
    return tso_state(lines)


def tso_state(lines: list[str]) -> tuple[bool | None, str]:
    """Userspace TSO from the daemon's log: logged just before its latest start line, or only after it."""
    starts = [i for i, ln in enumerate(lines) if START_LINE in ln]
    if not starts:
        return True, "on (configured; no start of the daemon in its log to confirm it)"
    start = starts[-1]
    # the daemon's first line (its log sequence restarts at 1) begins the block its start logged
    first = next((i for i in range(start, -1, -1) if "|00001|" in lines[i]), max(0, start - STARTUP_LINES))
    before = any(TSO_LINE in ln for ln in lines[first:start])
    after = any(TSO_LINE in ln for ln in lines[start:])
    if before:
        return True, ("on: TCP segments cross unshaped links as 64 KB frames (userspace TSO), "
                      "except in runs with the 5G path")
    if after:
        return None, ("turned on after ovs-vswitchd started, so only for ports added since: restart it "
                      "(/usr/share/openvswitch/scripts/ovs-ctl --no-ovsdb-server restart)")
    return False, "off (configured, but not in force: restart ovs-vswitchd)"


def docker_running() -> tuple[bool, str]:
    if not shutil.which("docker"):
        return False, "docker CLI not installed"
    r = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=8)
    if r.returncode != 0:
        return False, "Docker engine not running (scripts/docker-engine.sh starts it)"
    return True, f"engine {r.stdout.strip()}"


NEIGH_SYSCTL = "net.ipv4.neigh.default.gc_thresh{}"


def neighbour_limits() -> tuple[int, int, int] | None:
    """The machine's ARP table limits (gc_thresh1..3). There is one table for every namespace on the
    machine, so one alliance's hosts and servers share it; readable from any namespace, settable only
    from the machine's own (sysctl there; the per-namespace sysctl does not exist)."""
    r = _run(["ip", "ntable", "show", "name", "arp_cache"], timeout=5)
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 6 and f[0] == "thresh1" and f[2] == "thresh2" and f[4] == "thresh3":
            return int(f[1]), int(f[3]), int(f[5])
    return None


def raise_neighbour_limits(entries: int) -> tuple[str, str] | None:
    """Make room for `entries` ARP entries without eviction (gc_thresh2 at least `entries`, gc_thresh3 twice
    that); never lowers a limit. None when there was room already, else ("info" | "warning", what happened).

    Where this process cannot change them (a container with its own network namespace): a warning if the
    entries still fit under gc_thresh3 (they are evicted and resolved again, slower), PlatformError if they
    do not (new entries would fail: hosts unreachable); both give the command to run on the machine."""
    now = neighbour_limits()
    if now is None or now[1] >= entries:
        return None
    want = (max(now[1], entries), max(now[2], 2 * entries))
    cmd = ["sysctl", "-qw", f"{NEIGH_SYSCTL.format(2)}={want[0]}", f"{NEIGH_SYSCTL.format(3)}={want[1]}"]
    r = _run(cmd, timeout=5)
    if r.returncode == 0 and neighbour_limits() == (now[0], *want):
        return "info", (f"the machine's ARP table (shared by every namespace) raised from {now[1]}/{now[2]} to "
                        f"{want[0]}/{want[1]} entries (gc_thresh2/3) for about {entries} entries; it stays raised")
    why = (f"the machine's ARP table evicts above {now[1]} entries (gc_thresh2) and takes at most {now[2]} "
           f"(gc_thresh3); this alliance needs about {entries}, and this process cannot raise them (not in the "
           f"machine's own network namespace). Run on the machine: {' '.join(cmd)}")
    if entries > now[2]:
        raise PlatformError(why)
    return "warning", why


RCU_EXPEDITED = Path("/sys/kernel/rcu_expedited")


@contextlib.contextmanager
def expedited_rcu(knob: Path = RCU_EXPEDITED) -> Iterator[bool]:
    """The kernel's RCU grace periods expedited while the block runs; yields whether this call turned it on.

    Why: as a bridge goes, ovs-vswitchd closes one packet socket per port, and each close waits for a
    whole RCU grace period (packet_release -> synchronize_net), about 10-15 ms here. Measured: 500 bridges
    of 3 ports waited 22 s, with the daemon busy for a fifth of it. An expedited grace period takes
    microseconds (the kernel interrupts every CPU instead of waiting for each to pass a quiescent state),
    and the same teardown took 3.8 s. The setting is the machine's: it is turned on only if it was off,
    and put back off after; a /sys this process cannot write (a container) leaves it alone. Another run
    in the middle of its own teardown may see it put back: it is then slower, never wrong.
    """
    try:
        was = knob.read_text().strip()
    except OSError:
        yield False
        return
    turned_on = False
    if was == "0":
        try:
            knob.write_text("1")
            turned_on = True
        except OSError:
            pass
    try:
        yield turned_on
    finally:
        if turned_on:
            with contextlib.suppress(OSError):
                knob.write_text("0")


OVS_PIDFILE = Path("/var/run/openvswitch/ovs-vswitchd.pid")


def ovs_allocator() -> str:
    """The allocator the running ovs-vswitchd uses: 'tcmalloc', 'jemalloc', 'glibc', or 'unknown'.

    Why it matters: each turn of the daemon's main loop polls every veth port and allocates a batch
    of packet buffers per poll, too big for glibc's per-thread cache; a frame waits for a turn at
    every pass through the switches. scripts/ovs-start.sh preloads tcmalloc, which halves the turn
    (measured with the reference alliance's 37 bridges and 120 ports)."""
    try:
        maps = Path(f"/proc/{int(OVS_PIDFILE.read_text().strip())}/maps").read_text()
    except (OSError, ValueError):
        return "unknown"
    return allocator_of(maps)


def allocator_of(maps: str) -> str:
    """The allocator a process maps, from its /proc/PID/maps text."""
    for lib, name in (("libtcmalloc", "tcmalloc"), ("libjemalloc", "jemalloc")):
        if lib in maps:
            return name
    return "glibc"


def choose_datapath() -> str:
    """'system' (kernel) where the openvswitch module exists, else 'netdev'. TESTBED_DATAPATH overrides."""
    forced = os.environ.get("TESTBED_DATAPATH")
    if forced in ("system", "netdev"):
        return forced
    return "system" if ovs_kernel_module() else "netdev"


def detect(include_docker: bool = True) -> PlatformReport:
    """Probe everything `testbed doctor` shows. Takes about a second."""
    rep = PlatformReport()
    add = rep.checks.append
    add(Check("root", os.geteuid() == 0, "running as root" if os.geteuid() == 0 else "run as root (namespaces, OVS)", True))
    for tool, req in (("mnexec", True), ("ip", True), ("tc", True), ("ethtool", True), ("iperf3", False), ("tcpdump", False), ("ping", True)):
        path = shutil.which(tool)
        add(Check(tool, path is not None, path or "not found", req))
    ok, detail = ovs_running()
    add(Check("openvswitch", ok, detail, True))
    km = ovs_kernel_module()
    rep.datapath = choose_datapath()
    if ok and rep.datapath == "netdev":
        tso, why = userspace_tso()
        add(Check("userspace-tso", tso is not None, why, True))
        alloc = ovs_allocator()
        caching = alloc in ("tcmalloc", "jemalloc")
        add(Check("ovs-allocator", caching, f"ovs-vswitchd allocates with {alloc}" + ("" if caching else
                  ": its main loop runs about 2x slower per turn (scripts/setup.sh restarts it with tcmalloc)")))
    add(Check("ovs-kernel-datapath", km, "openvswitch module present" if km else
              "no openvswitch kernel module: using the userspace datapath (netdev)"))
    nm = netem_available()
    rep.impairment = choose_backend()
    add(Check("netem", nm, "sch_netem works" if nm else "no sch_netem: delay/jitter/loss use the userspace relay"))
    add(Check("htb", htb_available(), "HTB rate limiting", True))
    sc = sctp_available()
    add(Check("sctp", sc, "SCTP sockets work: the built-in 5G path runs NGAP (N2) over SCTP" if sc else
              "no SCTP: the built-in 5G path runs NGAP (N2) over TCP with a 4-octet length prefix per PDU; "
              "ran.backend ueransim (UERANSIM <-> Open5GS AMF) cannot run"))
    limits = neighbour_limits()
    add(Check("arp-table", limits is not None, "the ARP table's size is unknown (ip ntable shows none)" if limits is None
              else f"one ARP table for every namespace: evicts above {limits[1]} entries, holds at most {limits[2]} "
                   "(a run that needs more raises them where it can)"))
    if include_docker:
        ok, detail = docker_running()
        add(Check("docker", ok, detail))
    try:
        import os_ken  # noqa: F401

        add(Check("os-ken", True, "os-ken importable (Ryu API)", True))
    except ImportError:
        add(Check("os-ken", False, "pip install os-ken", True))
    return rep
