"""The default runtime: a node is a Mininet shell in network and mount namespaces of its own."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from testbed.errors import UsageError
from testbed.events import Emitter
from testbed.ran.forkserver import EnterSpec


class NamespaceRuntime:
    name = "namespace"

    def prepare(self, topo, nodes, emit: Emitter) -> dict[str, float]:
        return {}

    def start(self, topo, nodes, m, hosts_file: Path, base_dir: Path, emit: Emitter) -> dict[str, float]:
        return {}  # Mininet creates the namespaces when it adds the host

    def host_params(self, node: str) -> dict[str, Any]:
        from testbed.engine.mn import TbHost  # Mininet is imported only when a network is built

        return {"cls": TbHost}

    def record_fields(self, node: str) -> dict[str, Any]:
        return {"runtime": self.name}

    def setup_commands(self, intf: str, hosts_file: Path) -> list[str]:
        # the run's names in a private /etc/hosts, and no IPv6 chatter on the emulated links
        return ["sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
                f"mount --make-rprivate / && mount --bind {shlex.quote(str(hosts_file))} /etc/hosts"]

    def enter_argv(self, rec, argv: list[str]) -> list[str]:
        return ["mnexec", "-a", str(rec.pid), *argv]

    def enter_spec(self, rec) -> EnterSpec:
        return EnterSpec(rec.pid, namespaces=("net", "mnt"))  # what `mnexec -a` enters

    def limits(self, rec) -> dict[str, Any] | None:
        return None

    def set_limits(self, rec, items: list[str]) -> dict[str, Any]:
        raise UsageError(f"{rec.name!r} is a {self.name} node; only container nodes (runtime: docker) "
                         "have changeable limits")

    def teardown(self, m) -> None:
        """Nothing of its own: the node shells (and with them the namespaces) end in teardown's last step."""

    def orphans(self, known_runs: set[str]) -> dict[str, list[str]]:
        return {}

    def remove_orphans(self, names: list[str]) -> None:
        """Nothing outlives a namespace node's shell."""
