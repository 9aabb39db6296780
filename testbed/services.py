"""The catalogue of well-known alliance services: port, protocol, and the program that serves each.

A topology file may say `services: [emr, pacs]`; each name here gives the
default port and protocol, and the server that runs inside every node offering
it for as long as the testbed is up (not only during `run`), so real clients
(curl, openssl s_client, dcmtk's echoscu/storescu, an HL7 sender) can talk to
it. `server` is an argv template filled in by the engine:
  {python} the interpreter the testbed runs with (also inside containers, which
           bind-mount it), {ip} the node's address, {port} the service's port,
  {node}   the node's name, {pki} the run's certificate directory (ca.crt,
           NODE.crt, NODE.key), {data} a per-node scratch directory of the run.
`tls`: the service is only offered over TLS with a certificate from the run's
own CA (the paper's SSL tunnels); plaintext is refused by the server itself.
A service without a server here (the 5G ones, served by testbed.ran's programs
when the RAN runs, or a file's own {name, port, proto}) is answered only by the
isolation prober's listeners.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    proto: str  # tcp | udp
    summary: str
    server: tuple[str, ...] = ()
    tls: bool = False


def _py(module: str, *args: str) -> tuple[str, ...]:
    return ("{python}", "-m", module, "--bind", "{ip}", "--port", "{port}", *args)


_TLS = ("--cert", "{pki}/{node}.crt", "--key", "{pki}/{node}.key")

CATALOGUE: dict[str, ServiceSpec] = {s.name: s for s in (
    ServiceSpec("vdi", 4172, "tcp", "cloud desktop: remote display over TLS (PCoIP/Blast style)",
                _py("traffic.vdi_server", *_TLS), tls=True),
    ServiceSpec("emr", 443, "tcp", "electronic medical record: FHIR-style REST over HTTPS",
                _py("traffic.fhir_server", "--node", "{node}", *_TLS), tls=True),
    ServiceSpec("pacs", 104, "tcp", "PACS: DICOM storage and query/retrieve SCP",
                _py("traffic.dicom_scp", "--data", "{data}/pacs", "--ae-title", "PACS")),
    ServiceSpec("his", 2575, "tcp", "hospital information system: HL7 v2 over MLLP",
                _py("traffic.mllp_server", "--app", "HIS")),
    ServiceSpec("lis", 2576, "tcp", "laboratory information system: HL7 v2 over MLLP",
                _py("traffic.mllp_server", "--app", "LIS")),
    ServiceSpec("oa", 80, "tcp", "office automation: plain HTTP intranet",
                _py("traffic.web_server", "--node", "{node}")),
    ServiceSpec("payment", 8443, "tcp", "self-service payment kiosks' back end: HTTPS",
                _py("traffic.web_server", "--payments", "--node", "{node}", *_TLS), tls=True),
    ServiceSpec("mec-cache", 8080, "tcp", "MEC imaging cache: HTTP objects served at the edge",
                _py("traffic.web_server", "--cache", "--node", "{node}")),
    ServiceSpec("iperf", 5201, "tcp", "iperf3 server for bulk and cross traffic",
                ("iperf3", "-s", "-B", "{ip}", "-p", "{port}")),
    ServiceSpec("video", 5004, "udp", "video consultation: RTP-like media between expert and clinic",
                ("{python}", "-m", "traffic.media", "receive", "--bind", "{ip}", "--port", "{port}")),
    ServiceSpec("gtpu", 2152, "udp", "GTP-U user plane (N3): a UPF's uplink, a gNB's downlink"),
    # The 5G control plane and radio of the built-in emulation (testbed.ran), served by its programs.
    ServiceSpec("ngap", 38412, "tcp", "N2: NGAP between gNB and AMF (TCP here: the kernel lacks SCTP)"),
    ServiceSpec("pfcp", 8805, "tcp", "N4: the SMF programming a UPF (the emulation's JSON over TCP, not PFCP)"),
    ServiceSpec("pfcp-hb", 8805, "udp", "N4 path supervision: PFCP Heartbeat Request/Response (real PFCP)"),
    ServiceSpec("rls", 4997, "udp", "UERANSIM-style radio link simulation between UE and gNB"),
)}


def spec(name: str) -> ServiceSpec | None:
    return CATALOGUE.get(name)


def server_argv(name: str, port: int, fill: dict[str, str]) -> list[str] | None:
    """The argv serving service `name` on `port`, placeholders filled; None when nothing serves it."""
    s = CATALOGUE.get(name)
    if s is None or not s.server:
        return None
    values = {**fill, "port": str(port)}
    return [part.format(**values) for part in s.server]
