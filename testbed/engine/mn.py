"""Mininet node classes tagged with the run id.

We use stock Mininet for nodes and links, but not its cleanup (`mn -c` kills by
name pattern). The switch class adds external_ids so a crashed run's bridges can
be found in OVS by run id; Mininet's host-wide sysctl changes (`fixLimits`) are
skipped so a run leaves the host as it found it.
"""
from __future__ import annotations

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import Host, OVSSwitch

from testbed.engine import docker_node as dn

# The library never prints; Mininet's own chatter would land on the user's terminal.
setLogLevel("critical")
Mininet.inited = True  # skip Mininet.init() -> fixLimits(): host-wide sysctl/rlimit changes


class TbSwitch(OVSSwitch):
    """An OVS bridge whose ovsdb row says which run and node it belongs to."""

    def __init__(self, name: str, run_id: str = "", node_name: str = "", owner: dict[str, str] | None = None,
                 **params):
        self.run_id = run_id
        self.node_name = node_name
        self.owner = owner or {}
        super().__init__(name, **params)

    def bridgeOpts(self) -> str:
        ids = {"testbed-run": self.run_id, "testbed-node": self.node_name, **self.owner}
        return super().bridgeOpts() + "".join(f' external-ids:{k}="{v}"' for k, v in ids.items())


class TbHost(Host):
    """A namespace host; nothing special yet, but the place for per-node set-up."""


def new_net() -> Mininet:
    return Mininet(topo=None, build=False, autoSetMacs=False, autoStaticArp=False,
                   controller=None, waitConnected=False, cleanup=False)


class DockerHost(TbHost):
    """A Mininet host whose shell lives in a running container's namespaces and cgroups."""

    def __init__(self, name: str, container=None, image: str = "", **params):
        if container is None:
            raise ValueError("DockerHost needs a started container")
        self.container = container
        self.image = image
        super().__init__(name, **params)

    def _popen(self, cmd, **params):
        # startShell builds `mnexec -cdn bash ...` (a new namespace); attach to the container's instead.
        if isinstance(cmd, list) and len(cmd) > 1 and cmd[0] == "mnexec" and cmd[1].startswith("-cd"):
            rest = cmd[2:]
            if rest and rest[0] == "env":  # the container's environment, not the testbed's
                rest = ["env", "-i", *dn.container_env(self.container.pid), *rest[1:]]
            cmd = ["mnexec", "-cd", *dn.nsenter_argv(self.container.pid), *rest]
        return super()._popen(cmd, **params)

    def startShell(self, mnopts=None):
        dn.check_tools(self.container.pid, self.image)
        super().startShell(mnopts)
        dn.join_cgroups(self.pid, self.container.pid)
