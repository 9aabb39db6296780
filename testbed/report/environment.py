"""The machine a run measured on, for the report: a latency or a leak means little without the
kernel, the datapath and the versions that produced it.

Kernels differ in what they offer (no openvswitch module or netem on some), and
the testbed takes other paths then (userspace datapath, userspace relay), so the
report records both the features found and the paths taken.
"""
from __future__ import annotations

import os
import platform as pyplatform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from testbed import platform
from testbed.impair.netem import netem_available


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return pyplatform.system()


def collect(datapath: str, impairments: str, controller: str, tso: bool = False) -> dict[str, Any]:
    """The report's `platform` section: the paths this run took, then the machine's versions and
    kernel features. About 0.1 s (one throwaway namespace for the netem probe)."""
    docker = platform.docker_running()[1] if shutil.which("docker") else "not installed"
    return {
        "datapath": datapath, "impairments": impairments, "ovs": platform.ovs_running()[1], "controller": controller,
        "kernel": os.uname().release, "os": os_release(), "arch": pyplatform.machine(),
        "python": pyplatform.python_version(), "os_ken": _version("os-ken"), "testbed": _version("medalliance-testbed"),
        "docker": docker, "cpus": os.cpu_count() or 0,
        "features": {"openvswitch_module": platform.ovs_kernel_module(), "netem": netem_available(),
                     "sctp": platform.sctp_available(), "userspace_tso": tso,
                     "ovs_allocator": platform.ovs_allocator()},
    }
