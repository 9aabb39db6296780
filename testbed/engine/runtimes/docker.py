"""Container nodes: each node is a Docker container attached to the emulated network by the testbed.

See testbed.engine.docker_node for the mechanics (no Docker network, labels,
entering the container's namespaces and cgroups). This runtime decides which
containers a run needs, starts them in parallel (each recorded in the manifest
before `docker run`) and removes them again, by recorded name and by run label.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from testbed.engine import docker_node as dn
from testbed.engine.ownership import owner_alive, owner_fields
from testbed.engine.procs import kill_verified
from testbed.errors import UsageError
from testbed.events import Emitter
from testbed.ran.forkserver import EnterSpec
from testbed.topology.resolve import node_settings


class DockerRuntime:
    name = "docker"

    def __init__(self) -> None:
        self.started: dict[str, dn.Container] = {}

    def prepare(self, topo, nodes, emit: Emitter) -> dict[str, float]:
        from testbed.images import NODE_IMAGE

        dn.check_engine()
        emit.stage("images", "node images")
        spent = dn.ensure_images({node_settings(topo, n).image or NODE_IMAGE.name for n in nodes}, emit.info)
        emit.done("images", ", ".join(f"{i} ready in {s:.1f}s" for i, s in spent.items()))
        return {"images_s": sum(spent.values())}

    def start(self, topo, nodes, m, hosts_file: Path, base_dir: Path, emit: Emitter) -> dict[str, float]:
        t0 = time.monotonic()
        owner = owner_fields(m.supervisor_pid, m.supervisor_start)
        specs = [dn.spec_for(topo, n, m.run_id, hosts_file, base_dir, owner) for n in nodes]
        m.containers += [s.name for s in specs]  # before `docker run`: teardown removes them by name
        m.save()
        emit.stage("containers", "starting containers", total=len(specs))
        done: list[dn.Container] = []
        self.started = dn.start_containers(
            specs, lambda c: (done.append(c), emit.progress("containers", len(done), len(specs))))
        spent = time.monotonic() - t0
        emit.done("containers", f"{len(self.started)} containers in {spent:.1f}s")
        return {"containers_s": spent,
                "container_run_avg_s": sum(c.seconds for c in self.started.values()) / max(1, len(self.started))}

    def host_params(self, node: str) -> dict[str, Any]:
        from testbed.engine.mn import DockerHost

        c = self.started[node]
        return {"cls": DockerHost, "container": c, "image": c.image}

    def record_fields(self, node: str) -> dict[str, Any]:
        return {"runtime": self.name, "container": self.started[node].name}

    def setup_commands(self, intf: str, hosts_file: Path) -> list[str]:
        return []  # the hosts file and the IPv6 sysctls were given to `docker run`

    def enter_argv(self, rec, argv: list[str]) -> list[str]:
        c = self.started.get(rec.name)
        return dn.enter_argv(rec.pid, argv, c.pid if c else rec.container)

    def enter_spec(self, rec) -> EnterSpec:
        c = self.started.get(rec.name)
        return dn.enter_spec(rec.pid, c.pid if c else rec.container)

    def limits(self, rec) -> dict[str, Any] | None:
        return dn.limits(rec.container)

    def set_limits(self, rec, items: list[str]) -> dict[str, Any]:
        if not rec.container:
            raise UsageError(f"{rec.name!r} has no container")
        return dn.set_limits(rec.container, **dn.parse_limits(items))

    def teardown(self, m) -> None:
        """Containers of the run (recorded names, and whatever carries the run label). Their node shells go
        first: they sit in the containers' cgroups, which Docker cannot remove while they live. A `docker run`
        still in flight (the run was killed while starting containers) is waited for, or its container would
        appear after the removal."""
        if not m.containers:
            return
        dn.wait_runs_in_flight(m.containers)  # a run killed mid-start: let the engine finish creating them
        names = sorted(set(m.containers) | set(dn.containers_of_run(m.run_id)))
        kill_verified([(n.pid, n.pid_start) for n in m.nodes.values() if n.pid and n.runtime == self.name],
                      grace=2.0, group=True, sig=signal.SIGHUP)
        dn.remove_containers(names)

    def orphans(self, known_runs: set[str]) -> dict[str, list[str]]:
        """Containers of runs with no manifest here whose owner (from the labels) is dead."""
        out: dict[str, list[str]] = {}
        for rid, found in dn.labelled_containers().items():
            if rid in known_runs:
                continue
            dead = [name for name, owner in found if owner_alive(owner) is not True]
            if dead:
                out[rid] = dead
        return out

    def remove_orphans(self, names: list[str]) -> None:
        dn.remove_containers(names)
