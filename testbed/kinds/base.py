"""What a node kind declares: one frozen record per kind, read by every layer that needs it.

Modelled on Containerlab's node kinds: each kind says what it is and how it
behaves, and nothing elsewhere branches on a kind's name. The declaration is
plain data so that the lowest layer (the topology model, which must know the
kind names and defaults) can hold it; the engine interprets it:

- `switch`: an OpenFlow switch (an OVS bridge), not a host with an address;
- `offers_services` / `implicit_services`: whether a file may list services on
  it, and which it offers even when the file lists none (a UPF's GTP-U);
- `infra`: flows the kind needs to exist at all, granted implicitly and outside
  every slice (a gNB to each UPF's GTP-U, N3);
- `runtime`: how its nodes start when neither the node nor the file says
  (a network namespace, or a container);
- `daemons`: programs started inside each of its nodes once the network is up
  (their PIDs live in the node's namespace, so teardown finds and ends them);
- `ready_port`: a TCP port its daemons listen on when ready (the engine waits
  for it instead of sleeping), or None;
- `ran_role`: the part it plays in the file's `ran:` section ("ue" terminals
  are bound to "gnb" base stations), or None.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Daemon:
    """A program run inside a node: `argv` may use {node}, {ip} and {services} (comma separated ports)."""

    name: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class InfraGrant:
    """Every node of the declaring kind may open `service` on every node of kind `to_kind`."""

    to_kind: str
    service: str


@dataclass(frozen=True)
class Kind:
    name: str
    summary: str
    switch: bool = False
    offers_services: bool = False
    implicit_services: tuple[str, ...] = ()
    infra: tuple[InfraGrant, ...] = ()
    runtime: str = "namespace"
    daemons: tuple[Daemon, ...] = field(default_factory=tuple)
    ready_port: int | None = None
    ran_role: str | None = None

    @property
    def host(self) -> bool:
        """A host: one interface, one address (everything that is not a switch)."""
        return not self.switch
