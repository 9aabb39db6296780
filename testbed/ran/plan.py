"""The 5G plan of a topology: who registers where, with which sessions, through which UPF.

Both RAN backends (the built-in emulation and UERANSIM + Open5GS) and the
checks read this one plan, so "what the core allows" and "what the prober
expects" cannot drift apart. It is derived from the file, with defaults
wherever the file is silent (so `ran:` may be short or absent):

- every node of a kind whose `ran_role` is "ue" is a subscriber; its gNB is the
  gNB of its site (`ran.ues[].gnb` overrides); the gNBs it may re-attach
  through when that one is lost are the other gNBs of its site
  (`ran.ues[].gnbs` overrides, `[]` for none): each of them accepts the UE,
  and the UE's sessions keep their UPF, address and TEIDs through it;
- its PDU sessions are one per slice it is a member of, in the file's slice
  order (`ran.ues[].sessions` overrides); the DNN is the one given there, else
  the slice's name, so that every slice has its own DNN: Open5GS keys IP pools
  and UPF selection by DNN (smf.yaml `session[].dnn`, `pfcp.client.upf[].dnn`),
  and one DNN per slice makes the two backends agree;
- SUPIs are imsi-<mcc><mnc><msin>, 15 digits, numbered in node order, skipping
  any given explicitly;
- K and OPc come from HMAC-SHA256 over the SUPI keyed by a seed (the run id, or
  the topology name): reproducible for a run, different between runs, and
  nothing to store. They are emulation credentials, not secrets;
- one IPv4 pool per (slice, DNN), cut from `DEFAULT_UE_POOL` in equal blocks (at
  least /20 each), never overlapping the nodes' pool; its first address is the
  gateway (the UPF's N6 side), UEs get the next ones;
- UPF selection per (slice, gNB site): the most specific UPF binding wins, then
  the fewest hops from the gNB (testbed.ran.upfs); a session on a MEC UPF also
  names the central UPF the same selection picks among the central ones
  (`fallback_upf`): where its sessions go if the MEC UPF is lost;
- one UL and one DL TEID per session, unique in the whole plan (so unique per
  endpoint, and a TEID alone names its session in a capture): UL TEIDs, which
  the UPF allocates, are 0x1000_0000 + n; DL TEIDs, the gNB's, 0x2000_0000 + n;
- QFI 1: each session has one QoS flow, its default one (as Open5GS assigns it);
  the QoS flow description binds QFI 1 to the slice's 5QI (which can exceed 63,
  the largest QFI), and the outer DSCP of its GTP-U packets is the 5QI's
  (testbed.slicing.flows.fiveqi_dscp).
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from ipaddress import IPv4Address, IPv4Network
from math import ceil, log2

from testbed import kinds
from testbed.errors import Problem
from testbed.ran.errors import RanPlanError
from testbed.ran.snssai import Snssai
from testbed.ran import upfs as upf_selection
from testbed.ran.upfs import Upf, UpfBinding
from testbed.slicing.flows import fiveqi_dscp
from testbed.slicing.policy import INFRA, compile_policy
from testbed.topology.model import PduSession, Topology
from testbed.topology.resolve import assign_addresses

DEFAULT_UE_POOL = IPv4Network("10.45.0.0/16")  # Open5GS's default UE subnet, split per slice
MIN_POOL_SPLIT_BITS = 4  # each (slice, DNN) pool is at most 1/16 of the UE pool: /20 from a /16
UL_TEID_BASE = 0x1000_0000
DL_TEID_BASE = 0x2000_0000
DEFAULT_QFI = 1
GNB_ID_LENGTH = 32  # bits of the 36-bit NR cell identity that name the gNB (UERANSIM's default)
MAX_SESSIONS = 15  # PDU session identities 1..15 (TS 24.501 9.4)


@dataclass(frozen=True)
class SlicePlan:
    name: str
    snssai: Snssai
    fiveqi: int
    dscp: int
    rate_bps: int | None = None  # the slice's rate: the session AMBR the core grants

    @property
    def ambr_mbps(self) -> int:
        """Session AMBR in Mbit/s (NAS counts in 1 Mbit/s units up to 65535); 1 Gbit/s when unlimited."""
        return min(65535, max(1, self.rate_bps // 1_000_000)) if self.rate_bps else 1000


@dataclass(frozen=True)
class Pool:
    """UE addresses of one (slice, DNN); `gateway` is the UPF's N6-side address in it."""

    slice: str
    dnn: str
    network: IPv4Network
    gateway: IPv4Address


@dataclass(frozen=True)
class Core:
    """The AMF/SMF role: the file's node of kind core, else one the engine adds under this name."""

    name: str
    address: IPv4Address
    amf_region: int = 2  # GUAMI, as in Open5GS's sample amf.yaml
    amf_set: int = 1
    amf_pointer: int = 0


@dataclass(frozen=True)
class Gnb:
    name: str
    site: str | None
    address: IPv4Address  # N2 (NGAP), N3 (GTP-U) and the radio link simulation share it
    gnb_id: int
    tac: int

    @property
    def nci(self) -> int:
        """36-bit NR cell identity: the gNB id followed by cell 0."""
        return self.gnb_id << (36 - GNB_ID_LENGTH)


@dataclass(frozen=True)
class Session:
    """One PDU session: its tunnel interface in the UE, its address, and its GTP-U tunnel."""

    ue: str
    index: int  # 0-based: the UE's uesimtun<index>
    psi: int  # PDU session identity, 1..15
    slice: str
    snssai: Snssai
    dnn: str
    address: IPv4Address
    pool: IPv4Network
    gnb: str
    upf: str
    ul_teid: int  # gNB -> UPF G-PDUs carry it (allocated by the UPF)
    dl_teid: int  # UPF -> gNB G-PDUs carry it (allocated by the gNB)
    qfi: int
    fiveqi: int
    dscp: int  # outer IP DSCP of its GTP-U packets
    fallback_upf: str | None = None  # a MEC UPF's session: the central UPF that takes it if the MEC UPF is lost

    @property
    def tun(self) -> str:
        return f"uesimtun{self.index}"


@dataclass(frozen=True)
class Subscriber:
    name: str
    supi: str
    gnb: str
    key: str  # K, 32 hex digits
    opc: str  # OPc, 32 hex digits
    sessions: tuple[Session, ...]
    amf: str = "8000"  # authentication management field
    fallback_gnbs: tuple[str, ...] = ()  # where it re-attaches when its gNB is lost, in the order it tries them

    @property
    def cells(self) -> tuple[str, ...]:
        """Every gNB the UE may attach through: its own first, then its fallbacks."""
        return (self.gnb, *self.fallback_gnbs)

    @property
    def imsi(self) -> str:
        return self.supi.removeprefix("imsi-")

    @property
    def nssai(self) -> tuple[Snssai, ...]:
        """The subscribed S-NSSAIs: those of its sessions, once each, in session order."""
        return tuple(dict.fromkeys(s.snssai for s in self.sessions))


@dataclass(frozen=True)
class RanPlan:
    mcc: str
    mnc: str
    core: Core
    slices: tuple[SlicePlan, ...]
    gnbs: tuple[Gnb, ...]
    upfs: tuple[Upf, ...]
    pools: tuple[Pool, ...]
    subscribers: tuple[Subscriber, ...]

    @property
    def plmn(self) -> str:
        return self.mcc + self.mnc

    @property
    def sessions(self) -> list[Session]:
        return [s for sub in self.subscribers for s in sub.sessions]

    def gnb(self, name: str) -> Gnb:
        return _find(self.gnbs, name, "gNB")

    def upf(self, name: str) -> Upf:
        return _find(self.upfs, name, "UPF")

    def subscriber(self, name: str) -> Subscriber:
        return _find(self.subscribers, name, "UE")

    def slice(self, name: str) -> SlicePlan:
        return _find(self.slices, name, "slice")

    def by_supi(self, supi: str) -> Subscriber | None:
        return next((s for s in self.subscribers if s.supi == supi), None)

    def pool(self, slice_name: str, dnn: str) -> Pool:
        return next(p for p in self.pools if (p.slice, p.dnn) == (slice_name, dnn))


def _find(items, name: str, what: str):
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {what} named {name!r} in the RAN plan")


def subscriber_keys(supi: str, seed: str) -> tuple[str, str]:
    """(K, OPc) of a SUPI: HMAC-SHA256(seed, label|supi), 128 bits each, upper-case hex as UERANSIM writes them."""
    def derive(label: str) -> str:
        mac = hmac.new(f"testbed-ran|{seed}".encode(), f"{label}|{supi}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32].upper()

    return derive("k"), derive("opc")


def ran_plan(topo: Topology, seed: str | None = None, ue_pool: IPv4Network | None = None,
             upfs: Sequence[UpfBinding] | None = None) -> RanPlan:
    """The 5G plan of a validated topology; raises RanPlanError listing every problem.

    `seed` keys the subscriber credentials (pass the run id; default: the topology's
    name). `ue_pool` and `upfs` override the file's `ran.pool` and `ran.upfs`.
    """
    problems: list[Problem] = []
    ran = topo.ran
    ue_pool = ue_pool or getattr(ran, "pool", None) or DEFAULT_UE_POOL
    bindings = upfs if upfs is not None else getattr(ran, "upfs", None)
    addresses = {n: i.ip for n, i in assign_addresses(topo).items()}
    spare = _spare_addresses(topo, addresses)
    taken_names = {n.name for n in topo.nodes}

    def implicit_name(base: str) -> str:
        name, i = base, 1
        while name in taken_names:
            i += 1
            name = f"{base}-{i}"
        taken_names.add(name)
        return name

    slices = tuple(SlicePlan(s.name, Snssai(s.sst, s.sd.lower() if s.sd else None), s.fiveqi, fiveqi_dscp(s.fiveqi),
                             s.rate)
                   for s in topo.slices)
    core_nodes = [n for n in topo.nodes if kinds.get(n.kind).ran_role == "core"]
    core = (Core(core_nodes[0].name, addresses[core_nodes[0].name]) if core_nodes
            else Core(implicit_name("5gc"), next(spare)))
    gnb_nodes = [n for n in topo.nodes if kinds.get(n.kind).ran_role == "gnb"]
    gnbs = tuple(Gnb(n.name, n.site, addresses[n.name], i + 1, ran.tac) for i, n in enumerate(gnb_nodes))
    upf_list = upf_selection.plan_upfs(topo, addresses, bindings, lambda: (implicit_name("upf"), next(spare)),
                                       problems)
    problems += _pool_overlaps(topo, ue_pool, addresses)

    wanted = _wanted_sessions(topo, gnbs, problems)
    keys = list(dict.fromkeys((sl, dnn) for _ue, _gnb, _supi, sess, _fb in wanted for sl, dnn in sess))
    pools = _pools(topo, ue_pool, keys, [sum((sl, dnn) in w[3] for w in wanted) for sl, dnn in keys], problems)
    supis = _supis(topo, wanted, problems)
    if problems:
        raise RanPlanError(problems)

    by_slice = {s.name: s for s in slices}
    pool_of = {(p.slice, p.dnn): p for p in pools}
    next_host = {key: islice(p.network.hosts(), 1, None) for key, p in pool_of.items()}  # after the gateway
    selector = upf_selection.Selector(topo, upf_list)
    central = upf_selection.Selector(topo, [u for u in upf_list if u.role == upf_selection.CENTRAL])
    roles = {u.name: u.role for u in upf_list}
    subscribers, n = [], 0
    for (ue, gnb, _supi, sess, fallbacks), supi in zip(wanted, supis):
        out = []
        for index, (sl, dnn) in enumerate(sess):
            n += 1
            info = by_slice[sl]
            upf = selector.select(sl, gnb.name, gnb.site)
            out.append(Session(
                ue=ue, index=index, psi=index + 1, slice=sl, snssai=info.snssai, dnn=dnn,
                address=next(next_host[(sl, dnn)]), pool=pool_of[(sl, dnn)].network, gnb=gnb.name,
                upf=upf, ul_teid=UL_TEID_BASE + n, dl_teid=DL_TEID_BASE + n,
                qfi=DEFAULT_QFI, fiveqi=info.fiveqi, dscp=info.dscp,
                fallback_upf=_fallback(central, sl, gnb) if roles[upf] != upf_selection.CENTRAL else None))
        k, opc = subscriber_keys(supi, seed or topo.name)
        subscribers.append(Subscriber(ue, supi, gnb.name, k, opc, tuple(out), fallback_gnbs=fallbacks))
    return RanPlan(ran.plmn.mcc, ran.plmn.mnc, core, slices, gnbs, tuple(upf_list), tuple(pools), tuple(subscribers))


def _fallback(central: upf_selection.Selector, slice_name: str, gnb: Gnb) -> str | None:
    """The central UPF that would serve this slice at this gNB (None: no central UPF serves the slice)."""
    try:
        return central.select(slice_name, gnb.name, gnb.site)
    except RanPlanError:
        return None


def _spare_addresses(topo: Topology, addresses: dict[str, IPv4Address]):
    """Free addresses of the nodes' pool from its top down, for the nodes the plan adds (core, UPF)."""
    used = set(addresses.values())
    for addr in reversed(list(topo.defaults.addressing.pool.hosts())):
        if addr not in used:
            yield addr
    raise RanPlanError([topo.problem(("defaults", "addressing", "pool"),
                                     "no free address left for the 5G core or UPF the plan adds")])


UE_POOL_SUGGESTIONS = ("10.45.0.0/16", "10.46.0.0/16", "172.30.0.0/16")  # Open5GS's default first
NODE_POOL_SUGGESTIONS = ("10.77.0.0/16", "10.78.0.0/16", "172.31.0.0/16")  # the testbed's default first


def _pool_overlaps(topo: Topology, ue_pool: IPv4Network, addresses: dict[str, IPv4Address]) -> list[Problem]:
    node_pool = topo.defaults.addressing.pool
    if ue_pool.overlaps(node_pool):
        # blame the pool the file wrote (the UEs' when both or neither), and suggest one that fits beside the other
        if topo.ran.pool is not None or "pool" not in topo.defaults.addressing.model_fields_set:
            where, what, other, candidates = ("ran", "pool"), "ran.pool", node_pool, UE_POOL_SUGGESTIONS
        else:
            where, what, other, candidates = ("defaults", "addressing", "pool"), "the nodes' pool", ue_pool, \
                NODE_POOL_SUGGESTIONS
        free = next((c for c in map(IPv4Network, candidates) if not c.overlaps(other)), None)
        return [topo.problem(where, f"the UEs' PDU session pool {ue_pool} overlaps the nodes' pool {node_pool}; "
                                    f"choose {what} outside {other}" + (f" (e.g. {free})" if free else ""))]
    inside = sorted(n for n, a in addresses.items() if a in ue_pool)
    if inside:
        return [topo.problem(("nodes",), f"node address(es) of {', '.join(inside)} fall in the UEs' "
                                         f"PDU session pool {ue_pool}")]
    return []


def _wanted_sessions(topo: Topology, gnbs: tuple[Gnb, ...], problems: list[Problem]):
    """(UE, its gNB, explicit SUPI or None, [(slice, DNN)], its fallback gNBs) per UE node, in node order."""
    bindings = {b.ue: (i, b) for i, b in enumerate(topo.ran.ues)}
    members = compile_policy(topo).members
    gnb_by_name = {g.name: g for g in gnbs}
    out = []
    for node in topo.nodes:
        if kinds.get(node.kind).ran_role != "ue":
            continue
        i, b = bindings.get(node.name, (None, None))
        where = ("ran", "ues", i) if i is not None else ("nodes",)
        if b is not None:
            gnb = gnb_by_name.get(b.gnb)
        else:
            local = [g for g in gnbs if node.site is not None and g.site == node.site]
            gnb = local[0] if local else None
            if gnb is None:
                problems.append(topo.problem(where, f"UE {node.name!r} has no gNB at its site "
                                                    f"({node.site or 'none'}); bind it in ran.ues"))
        if b is not None and "sessions" in b.model_fields_set:
            sessions = [(s.slice, _dnn(s)) for s in b.sessions]
        else:
            sessions = [(sl, sl) for sl, ms in members.items() if sl != INFRA and node.name in ms]
        if len(sessions) > MAX_SESSIONS:
            problems.append(topo.problem(where, f"UE {node.name!r} would have {len(sessions)} PDU sessions; "
                                                f"at most {MAX_SESSIONS} (PDU session identities 1-15)"))
        if len(set(sessions)) != len(sessions):
            problems.append(topo.problem(where, f"UE {node.name!r} lists one slice/DNN twice"))
        if gnb is not None:
            if b is not None and b.gnbs is not None:
                fallbacks = tuple(g for g in b.gnbs if g in gnb_by_name and g != gnb.name)
            else:
                fallbacks = tuple(g.name for g in gnbs if g.site is not None and g.site == node.site
                                  and g.name != gnb.name)
            out.append((node.name, gnb, b.supi if b is not None else None, sessions, fallbacks))
    return out


def _dnn(session: PduSession) -> str:
    """The session's DNN: the one the file gives, else its slice's name (one DNN per slice)."""
    return session.dnn if "dnn" in session.model_fields_set else session.slice


def _pools(topo: Topology, ue_pool: IPv4Network, keys: list[tuple[str, str]], counts: list[int],
           problems: list[Problem]) -> list[Pool]:
    if not keys:
        return []
    bits = max(MIN_POOL_SPLIT_BITS, ceil(log2(len(keys))))
    prefix = ue_pool.prefixlen + bits
    if prefix > 30:
        problems.append(topo.problem(("ran",), f"{len(keys)} slice/DNN pools do not fit in {ue_pool}"))
        return []
    out = []
    for (sl, dnn), count, net in zip(keys, counts, ue_pool.subnets(new_prefix=prefix)):
        if count > net.num_addresses - 3:  # network, gateway, broadcast
            problems.append(topo.problem(("ran",), f"pool {net} of slice {sl!r} (DNN {dnn!r}) holds "
                                                   f"{net.num_addresses - 3} UEs, not {count}"))
        out.append(Pool(sl, dnn, net, net.network_address + 1))
    return out


def _supis(topo: Topology, wanted, problems: list[Problem]) -> list[str]:
    plmn = topo.ran.plmn.mcc + topo.ran.plmn.mnc
    explicit = [supi for _ue, _g, supi, _s, _fb in wanted if supi]
    for i, b in enumerate(topo.ran.ues):
        if b.supi and not b.supi.removeprefix("imsi-").startswith(plmn):
            problems.append(topo.problem(("ran", "ues", i, "supi"),
                                         f"{b.supi} is not of the PLMN {plmn} (ran.plmn): the core would not know it"))
        if b.supi and explicit.count(b.supi) > 1:
            problems.append(topo.problem(("ran", "ues", i, "supi"), f"{b.supi} is given to more than one UE"))
    taken, msin, out = set(explicit), 0, []
    for _ue, _gnb, supi, _sessions, _fb in wanted:
        if supi is None:
            while True:
                msin += 1
                supi = f"imsi-{plmn}{msin:0{15 - len(plmn)}d}"
                if supi not in taken:
                    break
        out.append(supi)
    return out
