"""A throwaway 5G lab for the built-in programs (tests/ran, benchmarks): namespaces on one Linux bridge.

    ns tbranXXXX-sw: bridge tbrXXXXbr
      |-- tbranXXXX-ue      the UE (tablet: two slices, and a third it is not subscribed to)
      |-- tbranXXXX-rogue   a UE whose SUPI the core does not know
      |-- tbranXXXX-gnb     the gNB
      |-- tbranXXXX-core    the AMF/SMF
      |-- tbranXXXX-upf     the UPF
      `-- tbranXXXX-server  the servers of both slices (emr, pacs: two addresses), routes the pools via the UPF

Everything is named with a random run prefix (tbran<hex>, interfaces tbr<hex>...),
created inside the lab's own namespaces (veth pairs are made in the switch
namespace and their peers moved straight into the node's), and removed by
destroy(): deleting the namespaces removes every interface in them. Nothing
else on the host is touched. The addresses and the plan come from a small
topology (LAB_TOPOLOGY) run through the real planner and agents, so the lab
exercises exactly the configs the engine will write.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.ran import agents, nas
from testbed.ran.plan import RanPlan, Snssai, ran_plan
from testbed.topology.loader import parse_text
from testbed.topology.model import Topology
from tests.tools.ranprograms import LabPrograms, run

LAB_TOPOLOGY = """
name: ranlab
defaults: {addressing: {pool: 10.251.%(net)d.0/24}}
sites:
  - {name: dc, type: datacentre}
  - {name: clinic, type: clinic}
nodes:
  - {name: core-sw, kind: switch, site: dc}
  - {name: emr, kind: server, site: dc, services: [emr, iperf]}
  - {name: pacs, kind: server, site: dc, services: [pacs]}
  - {name: upf-1, kind: upf, site: dc}
  - {name: clinic-sw, kind: switch, site: clinic}
  - {name: gnb-1, kind: gnb, site: clinic}
  - {name: tablet, kind: ue, site: clinic}
  - {name: kiosk, kind: ue, site: clinic}
links:
  - {endpoints: [emr, core-sw]}
  - {endpoints: [pacs, core-sw]}
  - {endpoints: [upf-1, core-sw]}
  - {endpoints: [clinic-sw, core-sw]}
  - {endpoints: [gnb-1, clinic-sw]}
  - {endpoints: [tablet, clinic-sw]}
  - {endpoints: [kiosk, clinic-sw]}
slices:
  - {name: clinical, sst: 1, sd: "000001", fiveqi: 7, members: [tablet], services: [emr, iperf]}
  - {name: imaging, sst: 1, sd: "000002", fiveqi: 8, members: [tablet], services: [pacs]}
  - {name: kiosk, sst: 3, sd: "000003", fiveqi: 9, members: [kiosk], services: [emr]}
ran:
  plmn: {mcc: "460", mnc: "00"}
"""
UNKNOWN_SUPI = "imsi-460009999999999"
ROGUE_HOST = 200  # the rogue UE's host number in the lab subnet (outside the planned nodes)
DIRECT_HOST = 250  # an extra server address reached over the bridge, not through any session
KIOSK = Snssai(3, "000003")




@dataclass
class RanLab(LabPrograms):
    """The lab's namespaces, addresses and configs; running the programs in it is LabPrograms' part."""

    tag: str
    net: int
    topo: Topology
    plan: RanPlan
    workdir: Path
    roles: dict[str, str] = field(default_factory=dict)  # role -> address
    created_ns: list[str] = field(default_factory=list)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, dict] = field(default_factory=dict)
    initial_forwarding: str = ""  # the UPF namespace's ip_forward before the UPF ran (it restores it)

    # ------------------------------------------------------------------ build

    @classmethod
    def create(cls, workdir: Path, offloads: bool = False) -> "RanLab":
        net = 1 + secrets.randbelow(250)
        topo = parse_text(textwrap.dedent(LAB_TOPOLOGY % {"net": net}), "ranlab.yaml")
        plan = ran_plan(topo, seed="ranlab")
        lab = cls(secrets.token_hex(2), net, topo, plan, workdir)
        try:
            lab._build(offloads)
        except BaseException:
            lab.destroy()
            raise
        return lab

    def ns(self, role: str) -> str:
        return f"tbran{self.tag}-{role}"

    def addr(self, host: int) -> str:
        return f"10.251.{self.net}.{host}"

    def _build(self, offloads: bool) -> None:
        addrs = agents.node_addresses(self.topo)
        self.roles = {"ue": str(addrs["tablet"]), "rogue": self.addr(ROGUE_HOST), "gnb": str(self.plan.gnbs[0].address),
                      "core": str(self.plan.core.address), "upf": str(self.plan.upfs[0].address),
                      "server": str(addrs["emr"])}
        extra = {"server": [str(addrs["pacs"]), self.addr(DIRECT_HOST)]}
        sw = self.ns("sw")
        for role in ["sw", *self.roles]:
            run("ip", "netns", "add", self.ns(role))
            self.created_ns.append(self.ns(role))
        bridge = f"tbr{self.tag}br"
        run("ip", "-n", sw, "link", "add", bridge, "type", "bridge")
        run("ip", "-n", sw, "link", "set", bridge, "up")
        for i, (role, address) in enumerate(self.roles.items()):
            outer, inner = f"tbr{self.tag}p{i}", f"tbr{self.tag}n{i}"
            run("ip", "-n", sw, "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", self.ns(role))
            run("ip", "-n", sw, "link", "set", outer, "master", bridge, "up")
            node = self.ns(role)
            run("ip", "-n", node, "link", "set", inner, "name", "eth0")
            if not offloads:  # as the testbed's network builder does for node-side ends
                run("ip", "netns", "exec", node, "ethtool", "-K", "eth0", "tx", "off", "rx", "off", "tso", "off",
                    "gso", "off", "gro", "off", check=False)
            run("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            for a in [address, *extra.get(role, [])]:
                run("ip", "-n", node, "addr", "add", f"{a}/24", "dev", "eth0")
            run("ip", "-n", node, "link", "set", "eth0", "up")
            run("ip", "-n", node, "link", "set", "lo", "up")
        routes = agents.server_routes(self.topo, self.plan)
        for dest, via in sorted(set(routes.get("emr", []) + routes.get("pacs", []))):  # both live in "server"
            run("ip", "-n", self.ns("server"), "route", "replace", dest, "via", via)
        self.initial_forwarding = run("ip", "netns", "exec", self.ns("upf"), "cat",
                                      "/proc/sys/net/ipv4/ip_forward").stdout.strip()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_configs()

    def _write_configs(self) -> None:
        for a in agents.agents(self.topo, self.plan):
            if a.program == "ue" and a.node != "tablet":
                continue  # the kiosk UE only exists so its slice has a member
            cfg = json.loads(json.dumps(a.config))
            if a.program == "ue":
                cfg["timers"] = {"heartbeat": 0.5}
                kiosk = next(s for s in self.plan.subscriber("kiosk").sessions)
                unsubscribed = agents.session_entry(kiosk, [], pti=3)
                unsubscribed.update(psi=3, tun="uesimtun2", request=nas.ul_nas_transport(
                    nas.session_request(3, 3), 3, KIOSK, "kiosk").hex())
                cfg["sessions"].append(unsubscribed)
                self.configs["ue"] = cfg
                rogue = dict(cfg, name="rogue", supi=UNKNOWN_SUPI, ue_id=999, address=self.roles["rogue"],
                             registration=nas.registration_request(UNKNOWN_SUPI, [Snssai(1, "000001")]).hex(),
                             sessions=[])
                self.configs["rogue"] = rogue
            else:
                self.configs[{"amf": "core"}.get(a.program, a.program)] = cfg
        for role, cfg in self.configs.items():
            (self.workdir / f"{role}.json").write_text(json.dumps(cfg, indent=1))

    # ------------------------------------------------------------------ teardown

    def destroy(self) -> None:
        """Stop our programs, then delete our namespaces (their interfaces go with them)."""
        for role in list(self.procs):
            try:
                self.stop(role)
            except Exception:
                pass
        for ns in reversed(self.created_ns):
            run("ip", "netns", "del", ns, check=False)
        self.created_ns.clear()
