"""Mininet node classes tagged with the run id.

We use stock Mininet for nodes and links, but not its cleanup (`mn -c` kills by
name pattern). The switch class adds external_ids so a crashed run's bridges can
be found in OVS by run id; Mininet's host-wide sysctl changes (`fixLimits`) are
skipped so a run leaves the host as it found it.
"""
from __future__ import annotations

from mininet.link import Link
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
        self._constructed = True

    # No shell until something needs one: the bridge is driven by ovs-vsctl from the building process
    # (batch start-up), and a shell costs ~7 ms per switch at start-up. Mininet asks for one by running a
    # command in it or by reading its PID (a link's `netns PID`): either starts it then.
    _constructed = False  # Node.__init__ done: from then on a shell is started when asked for

    def _ensure_shell(self) -> None:
        if self.shell is None and self._constructed:
            super().startShell()

    @property
    def pid(self) -> int | None:
        self._ensure_shell()
        return self.__dict__.get("_pid")

    @pid.setter
    def pid(self, value: int | None) -> None:
        self.__dict__["_pid"] = value

    def startShell(self, mnopts=None) -> None:
        if self._constructed:
            super().startShell(mnopts)

    def cmd(self, *args, **kwargs):
        self._ensure_shell()  # Mininet's cmd ignores a node without a shell (it takes it for exited)
        return super().cmd(*args, **kwargs)

    def sendCmd(self, *args, **kwargs):
        self._ensure_shell()
        return super().sendCmd(*args, **kwargs)

    @property
    def shell_pid(self) -> int | None:
        """The shell's PID if one was started (reading `pid` would start one)."""
        return self.__dict__.get("_pid")

    def bridgeOpts(self) -> str:
        ids = {"testbed-run": self.run_id, "testbed-node": self.node_name, **self.owner}
        return super().bridgeOpts() + "".join(f' external-ids:{k}="{v}"' for k, v in ids.items())


class TbHost(Host):
    """A namespace host whose address, MAC and loopback are set by hostconfig.configure_hosts, in the
    one shell round trip per host that also sets its offloads (Mininet's configDefault takes three)."""

    def configDefault(self, **more) -> None:
        self.params.update(more)
        intf = self.defaultIntf()
        if intf is None:
            return
        ip, mac = self.params.get("ip"), self.params.get("mac")
        if ip:  # what Mininet's setIP/setMAC would have recorded on the interface object
            intf.ip, _, intf.prefixLen = str(ip).partition("/")
        if mac:
            intf.mac = mac


class PairedLink(Link):
    """A veth link whose pair `add_links` already created, with every other plain link, in one `ip -batch`
    (Mininet runs one `ip link add` per link); its ends come up with their node's other settings."""

    @classmethod
    def makeIntfPair(cls, *args, **kwargs) -> None:
        return None


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
