"""The topology model: what a topology file may say, typed and strict.

Every model forbids unknown keys (a misspelt option must fail loudly, not be
ignored as Mininet's **params would). Units are parsed here, once. Cross-object
rules (references, duplicates, addresses) live in `validate.py`, because they
need the whole file, and report all problems at once. The shared value types
live in `fields.py` and the traffic half of the format (workloads, probes,
faults) in `scenario.py`; both are imported here, so `testbed.topology.model`
still names every part of the format (the loader's unknown-key hints walk it).
"""
from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field, PrivateAttr, model_validator

from testbed import kinds, services
from testbed.errors import Problem
from testbed.topology.fields import (  # noqa: F401  (re-exported: the format's names live here)
    MAC_PATTERN, NAME_PATTERN, UNICAST_MAC_PATTERN, Duration, Mac, Name, Percent, Rate, Size, Strict,
)
from testbed.topology.scenario import EXPECT_WORDS, Expect, Fault, Probe, Slo, Workload  # noqa: F401

SiteType = Literal["datacentre", "branch-campus", "community-health-centre", "clinic", "county-hospital", "other"]


def _known_kind(value: str) -> str:
    try:
        kinds.get(value)
    except KeyError:
        raise ValueError(f"Input should be one of: {', '.join(kinds.names())} (got {value!r})") from None
    return value


class _KindsInSchema:
    """The schema lists the kinds registered when it is generated (testbed.kinds), not a frozen copy."""

    @classmethod
    def __get_pydantic_json_schema__(cls, _core: Any, _handler: Any) -> dict:
        return {"type": "string", "enum": list(kinds.names())}


NodeKind = Annotated[str, AfterValidator(_known_kind), _KindsInSchema]

# 3GPP TS 23.501 Table 5.7.4-1: standardised 5QI -> packet delay budget (ms).
FIVEQI_PDB_MS: dict[int, int] = {
    1: 100, 2: 150, 3: 50, 4: 300, 65: 75, 66: 100, 67: 100, 71: 150, 72: 300, 73: 300,
    74: 500, 76: 500, 5: 100, 6: 300, 7: 100, 8: 300, 9: 300, 69: 60, 70: 200, 79: 50,
    80: 10, 82: 10, 83: 10, 84: 30, 85: 5, 86: 5, 87: 5, 88: 10, 89: 15, 90: 20,
}


class Impair(Strict):
    """What one direction of a link does to packets (netem semantics)."""

    delay: Duration | None = Field(None, description="One-way delay, e.g. '5ms'.")
    jitter: Duration | None = Field(None, description="Delay variation, e.g. '1ms'.")
    jitter_dist: Literal["uniform", "normal", "pareto", "paretonormal"] | None = Field(
        None, description="Distribution of the jitter (default normal).")
    loss: Percent | None = Field(None, description="Loss, e.g. '0.1%'.")
    loss_burst: float | None = Field(None, ge=1, description="Mean loss burst in packets: > 1 makes loss bursty "
                                                             "(Gilbert model); 1 is random loss.")
    duplicate: Percent | None = Field(None, description="Duplicated packets, e.g. '0.5%'.")
    reorder: Percent | None = Field(None, description="Packets sent ahead of the queue (needs delay), e.g. '1%'.")

    def is_set(self) -> bool:
        return any(getattr(self, f) is not None for f in IMPAIR_FIELDS)


IMPAIR_FIELDS = ("delay", "jitter", "jitter_dist", "loss", "loss_burst", "duplicate", "reorder")


class LinkParams(Impair):
    """Properties of a link; any left out inherit from the site and file defaults."""

    bw: Rate | None = Field(None, description="Rate limit, e.g. '100Mbit' (HTB).")
    mtu: int | None = Field(None, ge=68, le=9000)
    qos: bool | None = Field(None, description="Priority queues by DSCP on the switch ends of a rate-limited link "
                                               "(default true): EF > AF4x > AF3x > AF2x > AF1x > BE, each bounded. "
                                               "false: one FIFO, a plain rate limit.")


def _address_text(value: Any) -> Any:
    """pydantic reads an integer as an address (`pool: true` was 0.0.0.1/32, `ip: 5` 0.0.0.5): a file writes text."""
    if isinstance(value, (int, float)):
        raise ValueError(f"expected an address as text like 10.77.0.0/16, got the number {value!r}")
    return value


AddressText = BeforeValidator(_address_text)


class Addressing(Strict):
    pool: Annotated[IPv4Network, AddressText] = Field(IPv4Network("10.77.0.0/16"), description="Private pool nodes draw addresses from.")


class NodeDefaults(Strict):
    """Settings a node inherits when it does not set them (node -> kind -> file)."""

    runtime: Literal["namespace", "docker"] | None = None
    image: str | None = None
    cpus: float | None = Field(None, gt=0)
    memory: Size | None = None


class Defaults(Strict):
    addressing: Addressing = Addressing()
    link: LinkParams = LinkParams()
    node: NodeDefaults = NodeDefaults()
    kinds: dict[NodeKind, NodeDefaults] = Field(default_factory=dict)


class Site(Strict):
    """An alliance unit: the hospital data centre, a branch campus, a clinic..."""

    name: Name
    type: SiteType
    description: str | None = None
    link: LinkParams | None = Field(None, description="Defaults for links inside this site.")
    uplink: LinkParams | None = Field(None, description="Defaults for links leaving this site (WAN, leased line).")


class Service(Strict):
    """A service a node offers: the slice policy grants access per service."""

    name: Name
    port: int = Field(ge=1, le=65535)
    proto: Literal["tcp", "udp"] = "tcp"


# Well-known clinical services (testbed.services), so a file can say `services: [emr, pacs]`.
KNOWN_SERVICES: dict[str, Service] = {
    s.name: Service(name=s.name, port=s.port, proto=s.proto) for s in services.CATALOGUE.values()
}


def _service(value: Any) -> Any:
    if isinstance(value, str):
        if value not in KNOWN_SERVICES:
            raise ValueError(
                f"unknown service {value!r}; known: {', '.join(sorted(KNOWN_SERVICES))}, "
                "or write {name, port, proto}"
            )
        return KNOWN_SERVICES[value].model_dump()
    return value


KnownServiceName = Literal[tuple(KNOWN_SERVICES)]  # type: ignore[valid-type]  # built at runtime, for the schema
# The schema must admit what the validator admits: a known name or a full {name, port, proto}.
ServiceRef = Annotated[Service, BeforeValidator(_service, json_schema_input_type=Union[KnownServiceName, Service])]


class Node(Strict):
    """A network element or host. Every kind but a switch kind is a host with one address (testbed.kinds)."""

    name: Name
    kind: NodeKind
    site: Name | None = None
    description: str | None = None
    ip: Annotated[IPv4Interface, AddressText] | None = Field(None, description="Address, e.g. 10.77.0.10 (prefix taken from the pool).")
    mac: Mac | None = None
    services: list[ServiceRef] = Field(default_factory=list)
    spare: bool = Field(False, description="A standby host: it offers its services (and every slice granting them "
                                           "reaches it) but is given no sessions until a host offering the same "
                                           "service is lost; then that host's sessions move to it (desktop failover).")
    runtime: Literal["namespace", "docker"] | None = None
    image: str | None = None
    command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    volumes: list[str] = Field(default_factory=list)
    cpus: float | None = Field(None, gt=0)
    memory: Size | None = None

    @model_validator(mode="after")
    def _implicit_services(self) -> "Node":
        """Services the kind always offers (a UPF's gtpu) are added when the file does not list them."""
        listed = {s.name for s in self.services}
        for name in kinds.get(self.kind).implicit_services:
            if name not in listed:
                self.services.append(KNOWN_SERVICES[name].model_copy())
        return self


class Link(LinkParams):
    """A point-to-point link; a host's link to its switch is its only interface.

    Settings apply to both directions; `a_to_b` / `b_to_a` override them for one
    direction (a = endpoints[0]).
    """

    endpoints: tuple[Name, Name]
    a_to_b: Impair | None = None
    b_to_a: Impair | None = None


class Slice(Strict):
    """A network slice: who is in it, what it may reach, how it is served."""

    name: Name
    sst: int = Field(1, ge=0, le=255, description="Slice/Service Type: 1 eMBB, 2 URLLC, 3 MIoT.")
    sd: str | None = Field(None, pattern=r"^[0-9a-fA-F]{6}$", description="Slice Differentiator, 6 hex digits.")
    fiveqi: int = Field(9, description="5QI of the slice's default QoS flow (TS 23.501 table 5.7.4-1).")
    members: list[str] = Field(default_factory=list, description="Node names, 'site:NAME', 'kind:KIND' or a pattern of host names ('dr-tablet-*').")
    services: list[str] = Field(default_factory=list, description="Service names, or 'NODE:SERVICE'.")
    rate: Rate | None = None
    latency_budget: Duration | None = Field(
        None, description="One-way delay budget between a member and the services it is granted "
                          "(default: the 5QI's packet delay budget, TS 23.501 table 5.7.4-1).")

    @property
    def budget_ms(self) -> float | None:
        """The slice's one-way latency budget: its own, else its 5QI's packet delay budget (None: unknown 5QI)."""
        if self.latency_budget is not None:
            return self.latency_budget
        pdb = FIVEQI_PDB_MS.get(self.fiveqi)
        return None if pdb is None else float(pdb)


class PduSession(Strict):
    slice: Name
    dnn: str = "hospital"


class UeBinding(Strict):
    ue: Name
    gnb: Name
    gnbs: list[Name] | None = Field(
        None, description="The other gNBs the UE may re-attach through when its gNB is lost, in the order it "
                          "tries them (a second cell of its site, or a neighbour cell). Absent: every other gNB of "
                          "its site; []: none.")
    supi: str | None = Field(None, pattern=r"^imsi-\d{15}$")
    sessions: list[PduSession] = Field(default_factory=list)


class Plmn(Strict):
    mcc: str = Field("460", pattern=r"^\d{3}$")
    mnc: str = Field("00", pattern=r"^\d{2,3}$")


class UpfBinding(Strict):
    """A UPF node and what it serves: the slices and sites (empty: every one)."""

    name: Name
    slices: list[Name] = Field(default_factory=list)
    sites: list[Name] = Field(default_factory=list)


class Ran(Strict):
    backend: Literal["builtin", "ueransim", "off"] = Field(
        "builtin", description="builtin: the testbed's own UE/gNB/core/UPF programs, real NGAP/NAS/GTP-U on the wire "
                               "(the default); ueransim: UERANSIM + Open5GS containers (needs kernel SCTP and their "
                               "images); off: UEs are plain hosts on their site switch, no 5G path.")
    plmn: Plmn = Plmn()
    tac: int = Field(1, ge=0, le=0xFFFFFF)
    pool: Annotated[IPv4Network, AddressText] | None = Field(
        None, description="The UEs' PDU session addresses, split into one pool per slice (default 10.45.0.0/16, "
                          "Open5GS's); must not overlap the nodes' pool.")
    upfs: list[UpfBinding] | None = Field(
        None, description="Which UPF serves which slices at which sites (a binding with sites is a MEC UPF doing "
                          "local breakout there). Absent: derived from the graph - a UPF in the data centre is "
                          "central, one elsewhere serves the slices whose services sit beside it, at the units "
                          "nearer to it.")
    ues: list[UeBinding] = Field(default_factory=list)


class Controller(Strict):
    """Which SDN app runs the switches: a bundled app, a module path, or a remote controller."""

    app: str = Field("auto", description="Bundled app (auto: slicing when the file has slices, else forwarding; forwarding; slicing; stateless: the old stateless slice rules, a negative control; allow-all: broken on purpose), a module name, or a path to a Ryu/os-ken app .py.")
    remote: str | None = Field(None, pattern=r"^[^:\s]+:\d{1,5}$", description="host:port of a controller you run.")


class Topology(Strict):
    """A whole alliance network, as one file describes it."""

    # Where it was loaded from (testbed.topology.source.Source), so that the layers above can
    # report problems in the parts they own (workload types) as file:line too.
    _source: Any = PrivateAttr(default=None)

    name: Name
    description: str | None = None
    defaults: Defaults = Defaults()
    controller: Controller = Controller()
    sites: list[Site] = Field(default_factory=list)
    nodes: list[Node] = Field(min_length=1)
    links: list[Link] = Field(default_factory=list)
    slices: list[Slice] = Field(default_factory=list)
    ran: Ran = Ran()
    workloads: list[Workload] = Field(default_factory=list)
    probes: list[Probe] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)

    def problem(self, path: tuple, message: str) -> Problem:
        """A Problem located in the file this topology came from (file only when it came from memory)."""
        if self._source is not None:
            return self._source.problem(path, message)
        return Problem("<memory>", None, ".".join(str(p) for p in path), message)

    # -- lookups used everywhere; cheap enough to recompute on demand --
    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def switches(self) -> list[Node]:
        return [n for n in self.nodes if kinds.get(n.kind).switch]

    @property
    def hosts(self) -> list[Node]:
        return [n for n in self.nodes if kinds.get(n.kind).host]


Json = Union[dict, list, str, int, float, bool, None]
