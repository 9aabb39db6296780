"""The built-in 5G programs' configs, as pure functions of the plan: what the engine writes and starts.

`agents(topo, plan)` returns one `Agent` per program instance, in start order
(UPFs, then the core, then gNBs, then UEs: each one's peers are already
listening when it starts), each with the node it runs in, its module and its
JSON config. The engine only writes `agent.config` to a file and runs
`agent.argv(config_path, status_path)` inside `agent.node`. `server_routes`
says which routes the servers need so that their replies to session addresses
go back through the right UPF (N6).

What each config holds:
- UE: SUPI, RLS UE id, its node address and its gNBs' (its own first, then
  the fallbacks it re-attaches through when that one is lost); its NAS requests
  already encoded with pycrate (testbed.ran.nas: plain NAS is constant, so the
  UE process needs no NAS encoder); per session its id, slice, DNN, TUN name
  (the plan's uesimtunN) and routes: the addresses of the services its slice
  grants it (testbed.slicing.policy), each through the first session (plan
  order) whose slice grants it;
- gNB: its id, cell, tracking area, PLMN, the AMF's address, the slices, the
  outer DSCP per 5QI, and its UEs' RLS ids with the plan's DL TEIDs (the UEs
  that may re-attach through it as a fallback too);
- core (AMF/SMF): its address and the whole plan (testbed.ran.planfile);
- UPF: its address, the core address it takes N4 from, the gNBs whose
  sessions it serves, fallbacks included (others' GTP-U is dropped), and the pools it routes
  through its N6 TUN.

Wiring into `testbed up` (the engine's part; tests/tools/ranlab.py does the
same by hand on a bridge):
- nodes: the plan's core (`plan.core`) and any implicit UPF (`Upf.implicit`)
  are not in the file: add them, with the plan's addresses, beside the
  data-centre switch; every node needs /dev/net/tun and CAP_NET_ADMIN where a
  UE or UPF runs (containers: `--device /dev/net/tun --cap-add NET_ADMIN`), and
  python3 with this package (pycrate only where a gNB or the core runs);
- start order and readiness, from each status file: UPF (file written), core
  (`n4.upfs` all "associated"), gNBs (`n2.state` == "ready": a gNB answers no
  UE before NG setup), then UEs (every session "active" or "rejected");
  SIGTERM stops each cleanly (TUNs go with the process);
- routes: `server_routes()` in each server (`ip route replace DEST via UPF`);
  the UE's routes come with its config (through its TUNs);
- slice rules must carry the infrastructure flows: UE <-> its gNB UDP 4997
  (both ends port 4997), gNB -> core 38412 (TCP, or SCTP where present),
  core -> UPF TCP 8805, gNB <-> UPF UDP to port 2152 *from any source port*
  (senders use one socket per DSCP), and on N6 the UPF's port sends with the
  session addresses (the pools) as source, and receives replies to them;
- the N2 transport for `doctor` and the report: testbed.ran.n2.choose("auto").
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from testbed.ran import n2, n4, nas, rls, tun
from testbed.ran.plan import RanPlan, Session, Subscriber
from testbed.ran.planfile import plan_to_dict
from testbed.slicing.policy import compile_policy
from testbed.topology.model import Topology
from testbed.topology.resolve import assign_addresses

PROGRAMS = ("upf", "amf", "gnb", "ue")  # start order
# A UE with a fallback gNB: heartbeats twice a second, its cell lost after 1.5 s without an answer (the
# default 1 s / 5 s is kept where there is nowhere to go: a loaded host then never drops a UE for nothing)
FALLBACK_TIMERS = {"heartbeat": 0.5, "link_timeout": 1.5}
N6_TUN = "upfn6"


@dataclass(frozen=True)
class Agent:
    node: str  # the node it runs in: a topology node, or the plan's implicit core/UPF
    program: str  # one of PROGRAMS
    config: dict[str, Any] = field(compare=False)

    @property
    def module(self) -> str:
        return f"testbed.ran.{self.program}"

    def args(self, config_path: str, status_path: str | None = None) -> list[str]:
        """The program's arguments after `python -m MODULE` (the fork server takes them alone)."""
        return ["--config", config_path] + (["--status", status_path] if status_path else [])

    def argv(self, config_path: str, status_path: str | None = None, python: str = "python3") -> list[str]:
        return [python, "-m", self.module, *self.args(config_path, status_path)]


def node_addresses(topo: Topology) -> dict[str, IPv4Address]:
    return {n: i.ip for n, i in assign_addresses(topo).items()}


def agents(topo: Topology, plan: RanPlan, addresses: Mapping[str, IPv4Address | str] | None = None,
           n2_transport: str = "auto") -> list[Agent]:
    """Every program of the built-in emulation for this plan, in start order."""
    addrs = {k: str(v) for k, v in (addresses or node_addresses(topo)).items()}
    routes = session_routes(topo, plan, addrs)
    out = [Agent(u.name, "upf", upf_config(plan, u.name)) for u in plan.upfs]
    out.append(Agent(plan.core.name, "amf", amf_config(plan, n2_transport)))
    out += [Agent(g.name, "gnb", gnb_config(plan, g.name, addrs, n2_transport)) for g in plan.gnbs]
    out += [Agent(s.name, "ue", ue_config(plan, s, addrs[s.name], routes)) for s in plan.subscribers]
    return out


def session_routes(topo: Topology, plan: RanPlan, addresses: Mapping[str, str]) -> dict[tuple[str, int], list[str]]:
    """(UE, PSI) -> the /32s of the services its session's slice grants (each destination in one session only)."""
    policy = compile_policy(topo)
    granted: dict[tuple[str, str], list[str]] = defaultdict(list)  # (slice, ue) -> destination nodes
    for g in policy.grants:
        if g.dst not in granted[(g.slice, g.src)]:
            granted[(g.slice, g.src)].append(g.dst)
    out: dict[tuple[str, int], list[str]] = {}
    for sub in plan.subscribers:
        taken: set[str] = set()
        for s in sub.sessions:
            dests = [f"{addresses[d]}/32" for d in granted.get((s.slice, sub.name), []) if d in addresses]
            out[(sub.name, s.psi)] = [d for d in dests if not (d in taken or taken.add(d))]
    return out


def ue_config(plan: RanPlan, sub: Subscriber, address: str, routes: Mapping[tuple[str, int], list[str]]) -> dict:
    cells = [{"name": g, "address": str(plan.gnb(g).address), "port": rls.PORT} for g in sub.cells]
    out = {
        "name": sub.name,
        "supi": sub.supi,
        "ue_id": ue_id(plan, sub),
        "address": address,
        "gnb": cells[0],
        "fallback_gnbs": cells[1:],
        "rls_port": rls.PORT,
        "registration": nas.registration_request(sub.supi, sub.nssai, mnc_len=len(plan.mnc)).hex(),
        "sessions": [session_entry(s, routes.get((sub.name, s.psi), [])) for s in sub.sessions],
        "mtu": tun.DEFAULT_MTU,
    }
    if sub.fallback_gnbs:  # a lost cell is noticed in about a second (a radio link failure's T310 is ~1 s)
        out["timers"] = dict(FALLBACK_TIMERS)
    return out


def session_entry(s: Session, routes: list[str], pti: int | None = None) -> dict[str, Any]:
    """One UE session: its request (a UL NAS Transport carrying the PDU Session Establishment Request)."""
    request = nas.ul_nas_transport(nas.session_request(s.psi, pti or s.psi), s.psi, s.snssai, s.dnn)
    return {"psi": s.psi, "slice": s.slice, "snssai": str(s.snssai), "dnn": s.dnn, "tun": s.tun,
            "request": request.hex(), "routes": list(routes)}


def ue_id(plan: RanPlan, sub: Subscriber) -> int:
    """The UE's RLS id: its position in the plan, from 1 (unique per plan, so per gNB)."""
    return plan.subscribers.index(sub) + 1


def gnb_config(plan: RanPlan, name: str, addresses: Mapping[str, str], n2_transport: str = "auto") -> dict:
    g = plan.gnb(name)
    return {
        "name": g.name,
        "address": str(g.address),
        "gnb_id": g.gnb_id,
        "gnb_id_bits": 32,
        "nci": g.nci,
        "tac": g.tac,
        "plmn": plan.plmn,
        "amf": {"address": str(plan.core.address), "port": n2.PORT},
        "n2_transport": n2_transport,
        "slices": [{"sst": s.snssai.sst, "sd": s.snssai.sd} for s in plan.slices],
        "dscp_by_fiveqi": {str(s.fiveqi): s.dscp for s in plan.slices},
        "ues": [{"name": sub.name, "ue_id": ue_id(plan, sub), "address": addresses.get(sub.name),
                 "dl_teids": {str(s.psi): s.dl_teid for s in sub.sessions}}
                for sub in plan.subscribers if g.name in sub.cells],
    }


def amf_config(plan: RanPlan, n2_transport: str = "auto") -> dict:
    return {
        "name": plan.core.name,
        "amf_name": f"{plan.core.name}-amf",
        "address": str(plan.core.address),
        "ngap_port": n2.PORT,
        "n2_transport": n2_transport,
        "n4_port": n4.PORT,
        "plan": plan_to_dict(plan),
    }


def upf_config(plan: RanPlan, name: str) -> dict:
    u = plan.upf(name)
    mine = [s for s in plan.sessions if name in (s.upf, s.fallback_upf)]  # the sessions it may take over too
    cells = {sub.name: sub.cells for sub in plan.subscribers}
    gnbs = sorted({str(plan.gnb(g).address) for s in mine for g in cells[s.ue]}, key=IPv4Address)
    pools = list(dict.fromkeys(str(s.pool) for s in mine))
    return {
        "name": u.name,
        "address": str(u.address),
        "smf": [str(plan.core.address)],
        "gnbs": gnbs,
        "pools": pools,
        "n6": {"tun": N6_TUN, "mtu": tun.DEFAULT_MTU, "forwarding": True},
        "n4_port": n4.PORT,
    }


def server_routes(topo: Topology, plan: RanPlan,
                  addresses: Mapping[str, IPv4Address | str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """node -> [(destination, via)]: how each server granted to a session sends replies back through its UPF.

    A pool whose sessions reaching that server all use one UPF gets one route;
    when a pool is split between UPFs (a MEC UPF at some sites), each session
    address gets its own /32 through its UPF.
    """
    addrs = {k: str(v) for k, v in (addresses or node_addresses(topo)).items()}
    policy = compile_policy(topo)
    by_pool: dict[tuple[str, IPv4Network], dict[str, list[Session]]] = defaultdict(lambda: defaultdict(list))
    for s in plan.sessions:
        for g in policy.grants:
            if g.src == s.ue and g.slice == s.slice and g.dst in addrs:
                if s not in by_pool[(g.dst, s.pool)][s.upf]:
                    by_pool[(g.dst, s.pool)][s.upf].append(s)
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for (node, pool), upfs in by_pool.items():
        if len(upfs) == 1:
            out[node].append((str(pool), str(plan.upf(next(iter(upfs))).address)))
        else:
            for upf, sessions in upfs.items():
                out[node] += [(f"{s.address}/32", str(plan.upf(upf).address)) for s in sessions]
    return {n: sorted(set(r)) for n, r in out.items()}
