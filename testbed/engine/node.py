"""`NodeHandle`: a node of a running testbed, for running commands inside it."""
from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed.engine.testbed import Testbed


class NodeHandle:
    """A host of the running network by its topology name; commands run in its namespaces (and cgroups)."""

    def __init__(self, tb: "Testbed", name: str, mn_node: Any):
        self.tb, self.name, self._mn = tb, name, mn_node

    @property
    def ip(self) -> str:
        return str(self.tb.layout.ips[self.name].ip)

    @property
    def mac(self) -> str:
        return self.tb.layout.macs[self.name]

    @property
    def pid(self) -> int:
        return self._mn.pid

    def cmd(self, command: str) -> str:
        """Run a shell command in the node's own shell and return its output (blocking, not thread-safe)."""
        return self._mn.cmd(command)

    def run(self, argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run argv in the node's namespaces without its shell; safe to call from threads."""
        return subprocess.run(self.argv(argv), capture_output=True, text=True, timeout=timeout)

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen:
        """Start a background process in the node; it is killed at teardown (netns scan)."""
        return subprocess.Popen(self.argv(argv), **kw)

    def argv(self, argv: list[str]) -> list[str]:
        """`argv` wrapped so that it runs inside this node, however the node's runtime made it."""
        rec = self.tb.manifest.nodes[self.name]
        return self.tb.runtime_of(self.name).enter_argv(rec, argv)
