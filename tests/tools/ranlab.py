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
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.ran import agents, nas
from testbed.ran.plan import RanPlan, Snssai, ran_plan
from testbed.topology.loader import parse_text
from testbed.topology.model import Topology

REPO = Path(__file__).resolve().parents[2]

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


def _run(*cmd: str, timeout: float = 15.0, check: bool = True, input: str | None = None,
         env: dict[str, str] | None = None):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=check, input=input,
                          env=env)


@dataclass
class RanLab:
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
            _run("ip", "netns", "add", self.ns(role))
            self.created_ns.append(self.ns(role))
        bridge = f"tbr{self.tag}br"
        _run("ip", "-n", sw, "link", "add", bridge, "type", "bridge")
        _run("ip", "-n", sw, "link", "set", bridge, "up")
        for i, (role, address) in enumerate(self.roles.items()):
            outer, inner = f"tbr{self.tag}p{i}", f"tbr{self.tag}n{i}"
            _run("ip", "-n", sw, "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", self.ns(role))
            _run("ip", "-n", sw, "link", "set", outer, "master", bridge, "up")
            node = self.ns(role)
            _run("ip", "-n", node, "link", "set", inner, "name", "eth0")
            if not offloads:  # as the testbed's network builder does for node-side ends
                _run("ip", "netns", "exec", node, "ethtool", "-K", "eth0", "tx", "off", "rx", "off", "tso", "off",
                     "gso", "off", "gro", "off", check=False)
            _run("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            for a in [address, *extra.get(role, [])]:
                _run("ip", "-n", node, "addr", "add", f"{a}/24", "dev", "eth0")
            _run("ip", "-n", node, "link", "set", "eth0", "up")
            _run("ip", "-n", node, "link", "set", "lo", "up")
        routes = agents.server_routes(self.topo, self.plan)
        for dest, via in sorted(set(routes.get("emr", []) + routes.get("pacs", []))):  # both live in "server"
            _run("ip", "-n", self.ns("server"), "route", "replace", dest, "via", via)
        self.initial_forwarding = _run("ip", "netns", "exec", self.ns("upf"), "cat",
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

    # ------------------------------------------------------------------ programs

    PROGRAM = {"upf": "upf", "core": "amf", "gnb": "gnb", "ue": "ue", "rogue": "ue"}

    def start(self, role: str) -> subprocess.Popen:
        log = open(self.workdir / f"{role}.log", "w")
        self.logs[role] = log
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(role), sys.executable, "-m",
                              f"testbed.ran.{self.PROGRAM[role]}", "--config", str(self.workdir / f"{role}.json"),
                              "--status", str(self.status_path(role))],
                             stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
        self.procs[role] = p
        return p

    def start_all(self) -> None:
        """In the order the engine will use: each program's peers are ready before it starts."""
        ready = {"upf": lambda s: True, "core": lambda s: s["n4"]["upfs"].get("upf-1") == "associated",
                 "gnb": lambda s: s["n2"]["state"] == "ready", "ue": lambda s: True, "rogue": lambda s: True}
        for role in ("upf", "core", "gnb", "ue", "rogue"):
            self.start(role)
            self.wait_status(role, ready[role], timeout=30)

    def status_path(self, role: str) -> Path:
        return self.workdir / f"{role}-status.json"

    def status(self, role: str) -> dict[str, Any]:
        try:
            return json.loads(self.status_path(role).read_text())
        except (OSError, ValueError):
            return {}

    def wait_status(self, role: str, pred: Callable[[dict], bool], timeout: float = 20.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.status(role)
            if st and pred(st):
                return st
            p = self.procs.get(role)
            if p is not None and p.poll() is not None:
                raise RuntimeError(f"{role} exited with {p.returncode}: {self.log_text(role)[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{role}: condition not met in {timeout} s; status {json.dumps(self.status(role))[:1500]}"
                           f"\nlog: {self.log_text(role)[-1500:]}")

    def log_text(self, role: str) -> str:
        try:
            return (self.workdir / f"{role}.log").read_text()
        except OSError:
            return ""

    def stop(self, role: str, timeout: float = 10.0) -> int | None:
        p = self.procs.get(role)
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log = self.logs.pop(role, None)
        if log:
            log.close()
        return p.returncode

    def exec(self, role: str, *cmd: str, timeout: float = 30.0, check: bool = False,
             input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return _run("ip", "netns", "exec", self.ns(role), *cmd, timeout=timeout, check=check, input=input, env=env)

    def python(self, role: str, code: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run Python code inside a node (the repository importable), e.g. to send crafted packets."""
        return self.exec(role, sys.executable, "-c", code, timeout=timeout, check=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))

    def iperf(self, dst: str, seconds: int = 3, reverse: bool = False, bind: str | None = None) -> dict[str, Any]:
        """iperf3 TCP from the UE to a server address: bits/s received and retransmits (iperf3 -J)."""
        port = str(20000 + secrets.randbelow(20000))
        server = subprocess.Popen(["ip", "netns", "exec", self.ns("server"), "iperf3", "-s", "-1", "-B", dst,
                                   "-p", port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):  # wait (bounded) for it to listen
                if self.exec("server", "ss", "-ltnH", f"sport = :{port}").stdout.strip():
                    break
                time.sleep(0.05)
            cmd = ["iperf3", "-c", dst, "-p", port, "-t", str(seconds), "-J"] + (["-R"] if reverse else [])
            r = self.exec("ue", *cmd, *(["-B", bind] if bind else []), timeout=seconds + 30)
            data = json.loads(r.stdout or "{}")
            if "end" not in data:
                raise RuntimeError(f"iperf3 failed: {data.get('error', r.stderr[-300:])}")
            return {"bps": float(data["end"]["sum_received"]["bits_per_second"]),
                    "retransmits": data["end"]["sum_sent"].get("retransmits")}
        finally:
            server.kill()
            server.wait()

    def rss_kib(self, role: str) -> int:
        """Resident memory of a program (the Python process `ip netns exec` became)."""
        for line in Path(f"/proc/{self.procs[role].pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    # ------------------------------------------------------------------ teardown

    def destroy(self) -> None:
        """Stop our programs, then delete our namespaces (their interfaces go with them)."""
        for role in list(self.procs):
            try:
                self.stop(role)
            except Exception:
                pass
        for ns in reversed(self.created_ns):
            _run("ip", "netns", "del", ns, check=False)
        self.created_ns.clear()
