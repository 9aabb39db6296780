"""Things on the machine the testbed did not create, which its teardown and `clean` must leave alone.

A named network namespace with a process in it, an OVS bridge (with external_ids
of its own, but no testbed run tag), a veth pair, a container started from the
local node image (no registry here) without the testbed's labels, and a plain
process. Names start with `dcy` + a tag, so two test processes never share one.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field

from testbed.engine.rundir import is_alive, process_start_time


def _sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


@dataclass
class Decoys:
    tag: str
    image: str
    procs: list[tuple[int, float]] = field(default_factory=list)
    _popen: list[subprocess.Popen] = field(default_factory=list)

    @property
    def netns(self) -> str:
        return f"dcy{self.tag}ns"

    @property
    def bridge(self) -> str:
        return f"dcy{self.tag}br"

    @property
    def veth(self) -> tuple[str, str]:
        return f"dcy{self.tag}va", f"dcy{self.tag}vb"

    @property
    def container(self) -> str:
        return f"dcy{self.tag}ct"

    def create(self) -> "Decoys":
        _sh("ip", "netns", "add", self.netns)
        _sh("ovs-vsctl", "--may-exist", "add-br", self.bridge, "--", "set", "bridge", self.bridge,
            "datapath_type=netdev", "external-ids:owner=someone-else")
        a, b = self.veth
        _sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        _sh("docker", "run", "-d", "--network", "none", "--name", self.container, "--label", "purpose=decoy",
            self.image, "sleep", "infinity")
        for argv in (["sleep", "3600"], ["ip", "netns", "exec", self.netns, "sleep", "3600"]):
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
            self._popen.append(p)
            self.procs.append((p.pid, process_start_time(p.pid) or 0.0))
        return self

    def missing(self) -> list[str]:
        """Which decoys are gone (empty: all survived)."""
        gone = []
        if self.netns not in _sh("ip", "netns", "list").stdout.split():
            gone.append(f"netns {self.netns}")
        if _sh("ovs-vsctl", "br-exists", self.bridge, check=False).returncode != 0:
            gone.append(f"OVS bridge {self.bridge}")
        for end in self.veth:
            if not os.path.exists(f"/sys/class/net/{end}"):
                gone.append(f"veth {end}")
        r = _sh("docker", "inspect", "-f", "{{.State.Running}}", self.container, check=False)
        if r.stdout.strip() != "true":
            gone.append(f"container {self.container}")
        for pid, start in self.procs:
            if not is_alive(pid, start):
                gone.append(f"process {pid}")
        return gone

    def remove(self) -> None:
        for p in self._popen:
            p.kill()
            p.wait(10)
        _sh("docker", "rm", "-f", self.container, check=False)
        _sh("ip", "link", "del", self.veth[0], check=False)
        _sh("ovs-vsctl", "--if-exists", "del-br", self.bridge, check=False)
        _sh("ip", "netns", "del", self.netns, check=False)
