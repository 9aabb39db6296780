"""The testbed itself in a privileged container (as CI users run it): build the image from the
repository's Dockerfile (locally, no registry) and run the minimal topology inside it.

`--privileged` is tried first. On a host whose capability bounding set lacks a capability (our
CI VMs have no CAP_SYS_RESOURCE), runc fails with "unable to apply caps"; the test then grants
every capability the host does have, unconfined seccomp/AppArmor/system paths and /dev/net/tun,
which is what the testbed needs from --privileged. The mode used is recorded in the JUnit report.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from testbed.images import NODE_IMAGE, build_image

from .conftest import REPO

pytestmark = [pytest.mark.slow]

TAG = "testbed/runner:test"
LABEL = "org.medalliance.testbed.run=runner-test"
# Capability names Docker 20.10 knows, by number (capability.h); the host's bounding set decides.
CAP_NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
             "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
             "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
             "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
             "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
             "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ"]


def host_missing_caps() -> list[str]:
    bnd = next(int(ln.split()[1], 16) for ln in Path("/proc/self/status").read_text().splitlines()
               if ln.startswith("CapBnd:"))
    return [name for i, name in enumerate(CAP_NAMES) if not bnd >> i & 1]


def run_modes() -> list[tuple[str, list[str]]]:
    fallback = ["--cap-add", "ALL", *[a for c in host_missing_caps() for a in ("--cap-drop", c)],
                "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                "--security-opt", "systempaths=unconfined", "--device", "/dev/net/tun"]
    return [("--privileged", ["--privileged"]), ("all host capabilities", fallback)]


def test_minimal_topology_runs_in_a_privileged_container(record_property):
    build_image(NODE_IMAGE)  # the Dockerfile's base: cached when present
    t0 = time.monotonic()
    b = subprocess.run(["bash", "scripts/build-runner-image.sh", TAG], cwd=REPO, capture_output=True, text=True,
                       timeout=1200)
    assert b.returncode == 0, b.stderr[-3000:]
    record_property("runner_image_build_s", round(time.monotonic() - t0, 1))
    tried = []
    for mode, flags in run_modes():
        t0 = time.monotonic()
        r = subprocess.run(["docker", "run", "--rm", "--network", "none", "--label", LABEL, *flags, TAG,
                            "testbed", "run", "--format", "json", "topologies/minimal.yaml"],
                           capture_output=True, text=True, timeout=900)
        if "unable to apply caps" in r.stderr or "operation not permitted" in r.stderr.lower() and r.returncode == 125:
            tried.append(f"{mode}: {r.stderr.strip().splitlines()[0][:200]}")
            continue
        record_property("container_mode", mode)
        record_property("container_run_s", round(time.monotonic() - t0, 1))
        print(f"\nran in a container with {mode} ({time.monotonic() - t0:.1f} s); before: {tried}")
        assert r.returncode == 0, f"{mode}:\n{r.stdout[-4000:]}\n{r.stderr[-3000:]}"
        assert "PASS" in r.stdout
        return
    pytest.fail(f"no way to run a privileged container here: {tried}")
