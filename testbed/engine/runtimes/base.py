"""How a host node starts and is entered: the interface every node runtime implements.

Kathará's manager factory, applied to node runtimes: the engine, the CLI and
teardown call a runtime object and never compare runtime names. A runtime is
chosen per node (`runtime:` after node -> kind -> file defaults) and owns the
whole life of its nodes: preflight, start, what Mininet needs to attach them,
how a command enters them, limits, and removal (from the manifest alone, so
`testbed down` and `clean` in another process can remove them too).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from testbed.events import Emitter

if TYPE_CHECKING:
    from testbed.ran.forkserver import EnterSpec
    from testbed.engine.rundir import Manifest, NodeRecord
    from testbed.topology.model import Node, Topology


class Runtime(Protocol):
    name: str

    def prepare(self, topo: "Topology", nodes: list["Node"], emit: Emitter) -> dict[str, float]:
        """Preflight before anything is created (engine running, images present); returns timings."""
        ...

    def start(self, topo: "Topology", nodes: list["Node"], m: "Manifest", hosts_file: Path, base_dir: Path,
              emit: Emitter) -> dict[str, float]:
        """Create what the nodes live in (recorded in the manifest first); returns timings."""
        ...

    def host_params(self, node: str) -> dict[str, Any]:
        """Mininet addHost() class and parameters for a started node."""
        ...

    def record_fields(self, node: str) -> dict[str, Any]:
        """Extra NodeRecord fields for the manifest (runtime, container...)."""
        ...

    def setup_commands(self, intf: str, hosts_file: Path) -> list[str]:
        """Shell commands run once in each node after links exist (what `docker run` did not already do)."""
        ...

    def enter_argv(self, rec: "NodeRecord", argv: list[str]) -> list[str]:
        """argv that runs `argv` inside the node (its namespaces, and its cgroups where it has limits)."""
        ...

    def enter_spec(self, rec: "NodeRecord") -> "EnterSpec":
        """What enter_argv does, as data: for a process forked from one already running (the 5G fork server)."""
        ...

    def limits(self, rec: "NodeRecord") -> dict[str, Any] | None:
        """Current CPU/memory limits, None when the runtime has none."""
        ...

    def set_limits(self, rec: "NodeRecord", items: list[str]) -> dict[str, Any]:
        """Change limits live (`cpus=2 memory=4g`); UsageError where the runtime has none."""
        ...

    def teardown(self, m: "Manifest") -> None:
        """Remove what this runtime created for run `m`, from the manifest (and its own labels) alone."""
        ...

    def orphans(self, known_runs: set[str]) -> dict[str, list[str]]:
        """run id -> resources of runs with no manifest (for `testbed clean`)."""
        ...

    def remove_orphans(self, names: list[str]) -> None:
        ...
