"""The symbolic network: every header from every host port, pushed through the switches' real tables.

Header Space Analysis in the style of Veriflow/HSA, with Open vSwitch's
connection tracker modelled as the packet's *connection role* (the tracker's
state is not a header the sender controls, so it is a choice the model makes):

- a packet whose 5-tuple has no connection gets what OVS gives a first packet
  (+new, or +inv for TCP with invalid flags, a SYN-ACK, or ICMP other than an
  echo request);
- a packet whose 5-tuple (or its reverse) belongs to a connection some earlier
  packet could have committed gets +est (+rpl in the reply direction) and that
  connection's mark; it may also be the first (the connection may not exist
  yet), so both are explored;
- ICMP errors may be +rel with the mark of any connection (an attacker can quote
  any 5-tuple); a later fragment (no ports) takes its datagram's state, so it
  may be anything its addresses allow; any fragment may come back +inv (OVS's
  ipf gives up on it);
- after ct(commit) the same packet's next lookup in the zone is +est with the
  committed mark (the provider's edge sees what the member's edge committed).

Which connections "could have been committed" is itself computed: the whole
network is solved with no connections, every ct(commit) a packet reaches adds
its 5-tuples and mark, and it is solved again until that set stops growing (a
fixpoint, usually two rounds). Meters pass; a set_field keeps the sender's
header in the BDD and records the new value, which later matches see; goto and
ct(table=N) continue in that table; outputs follow the links to the next
switch or deliver at a host port. A loop is cut by a visited set per place.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from testbed.slicing import conntrack as ct
from testbed.verify.flowtext import OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL
from testbed.verify.headers import ETH_ARP, ETH_IP, HEADER, KEY, Space, to_int

Port = tuple[str, int]  # (dpid, OpenFlow port)
MAX_HOPS = 64
SWAP = {"ipv4_src": "ipv4_dst", "ipv4_dst": "ipv4_src", "tp_src": "tp_dst", "tp_dst": "tp_src"}
SWAP_IP = {"ipv4_src": "ipv4_dst", "ipv4_dst": "ipv4_src"}
CONTROLLER_PORT: Port = ("controller", OFPP_CONTROLLER)
SPLIT_TYPES = (ETH_IP, ETH_ARP)


@dataclass(frozen=True)
class _Where:
    dp: str
    table: int
    in_port: int
    rewrites: tuple[tuple[str, int], ...]  # set_field values so far (the BDD keeps the sender's)
    committed: tuple[int, int] | None  # (zone, mark) this packet committed on its way
    eth_dst: int | None  # the packet's one destination MAC, or None: not known to be one (see _split)
    eth_type: int | None = None  # IPv4 or ARP, or None: any other ethertype (set at injection, never rewritten)


@dataclass
class Commit:
    """Connections a packet from `src` could commit: its header set at the commit, zone and mark."""
    src: Port
    zone: int
    mark: int
    headers: object  # BDD over the header fields


@dataclass
class Solution:
    reach: dict[Port, dict[Port, object]]  # src port -> dst port -> sender headers that get there
    first: dict[Port, dict[Port, object]]  # the same with no connection in the tracker (no state needed)
    commits: list[Commit]
    rounds: int
    visits: int
    loops: list[str] = field(default_factory=list)
    sources: list[Port] = field(default_factory=list)  # every host port a packet was sent from


class Network:
    """Switch tables + links + host ports, solved symbolically (`solve()`)."""

    def __init__(self, space: Space, tables: dict[str, list[dict]], links: dict[Port, Port],
                 edge_ports: set[Port], frag_mode: str = "nx-match"):
        self.s = space
        self.tables = tables
        self.links = links
        self.edges = set(edge_ports)
        self.ports: dict[str, set[int]] = {}
        for dp, p in list(links) + list(edge_ports):
            self.ports.setdefault(dp, set()).add(p)
        self._rules: dict[tuple, list[tuple[dict, object]]] = {}
        self._by_table: dict[tuple[str, int], list[dict]] = {}
        self._bdds: dict[object, object] = {}
        self._macs: dict[tuple, list[int]] = {}
        self.frag_mode = frag_mode
        self._build_relations()

    # -- the header space each host may send ------------------------------------------
    def sendable(self):
        """Every well-formed frame; with frag mode 'normal' no fragment carries L4 fields (OVS zeroes them)."""
        s = self.s
        if self.frag_mode == "normal":
            frag = s.field("ip_frag", ct.FRAG_ANY, ct.FRAG_ANY)
            return s.wf & (~frag | s.zero("tp_src", "tp_dst", "tcp_flags", "icmpv4_type", "icmpv4_code"))
        return s.wf

    # -- tables ----------------------------------------------------------------------
    def _rules_at(self, dp: str, table: int, in_port: int, eth_dst: int | None,
                  eth_type: int | None) -> list[tuple[dict, object]]:
        """The rules of a table that can see a packet from in_port to eth_dst, highest priority first.

        Packets are solved one destination MAC at a time (see _split), so a table of
        thousands of per-MAC rules costs a dictionary lookup, not a scan."""
        key = (dp, table, in_port, eth_dst, eth_type)
        got = self._rules.get(key)
        if got is None:
            got = self._rules[key] = [(r, self._match(r)) for r in self._visible(dp, table, in_port, eth_type)
                                      if _named_mac(r) in (None, eth_dst)]
        return got

    def _visible(self, dp: str, table: int, in_port: int, eth_type: int | None) -> list[dict]:
        """The rules of a table a packet of this ethertype class from in_port can meet at all."""
        out = []
        for r in self._table_rules(dp, table):
            m = r["match"]
            if m.get("in_port", in_port) != in_port:
                continue
            et = m.get("eth_type")
            if et is not None and not isinstance(et, list) and (et != eth_type if eth_type is not None
                                                                 else et in SPLIT_TYPES):
                continue
            out.append(r)
        return out

    def _table_rules(self, dp: str, table: int) -> list[dict]:
        key = (dp, table)
        got = self._by_table.get(key)
        if got is None:
            got = self._by_table[key] = sorted((r for r in self.tables.get(dp, []) if r.get("table", 0) == table),
                                               key=lambda r: -r["priority"])
        return got

    def _restricted(self, rule: dict, m, rewrites: tuple):
        """A rule's match as a packet with rewritten fields meets it (cached: few rewrite sets occur)."""
        key = (id(rule), rewrites)
        got = self._bdds.get(key)
        if got is None:
            got = self._bdds[key] = self.s.restrict(m, {f: v for f, v in rewrites if f in rule["match"]})
        return got

    def _match(self, rule: dict):
        got = self._bdds.get(id(rule))
        if got is None:
            got = self._bdds[id(rule)] = self.s.match(rule["match"])
        return got

    # -- connection tracking -----------------------------------------------------------
    def _build_relations(self) -> None:
        s, p = self.s, self.s.p
        st = lambda bits: s.field("ct_state", bits)  # noqa: E731 - one exact ct_state value
        self.st = st
        self.mark0 = s.field("ct_mark", 0)
        new_ok = (~p.icmp & ~p.bad_tcp & ~p.synack) | p.echo_req
        self.first_state = ((new_ok & st(ct.TRK | ct.NEW)) | (~new_ok & st(ct.TRK | ct.INV))) & self.mark0
        self.later_first = (st(ct.TRK | ct.NEW) | st(ct.TRK | ct.INV)) & self.mark0
        self.valid_orig = ~p.bad_tcp & (~p.icmp | p.echo_req)
        self.valid_rpl = ~p.bad_tcp & (~p.icmp | p.echo_rep)
        self.frag_inv = p.frag & st(ct.TRK | ct.INV) & self.mark0
        self.inv = s.field("ct_state", ct.INV, ct.INV)
        self.icmp_err, self.later = p.icmp_err, p.later

    def _relation(self, conns):
        """ct() lookup result as a relation over header, ct_state and ct_mark, given the connections."""
        s, st = self.s, self.st
        cached = self._rel_cache.get(conns)
        if cached is not None:
            return cached
        orig, rpl = conns, s.rename(conns, SWAP)
        addr = s.forget(conns, "tp_src", "tp_dst")
        marks = s.forget(conns, *KEY)
        whole = (self.first_state | (orig & self.valid_orig & st(ct.TRK | ct.EST))
                 | (rpl & self.valid_rpl & st(ct.TRK | ct.EST | ct.RPL)) | (self.icmp_err & marks & st(ct.TRK | ct.REL)))
        later = (self.later_first | (addr & st(ct.TRK | ct.EST)) | (s.rename(addr, SWAP_IP) & st(ct.TRK | ct.EST | ct.RPL)))
        rel = (~self.later & whole) | (self.later & later) | self.frag_inv
        self._rel_cache[conns] = rel
        return rel

    def _lookup(self, pkt, zone: int, committed: tuple[int, int] | None):
        base = self.s.forget(pkt, "ct_state", "ct_mark")
        if committed is not None and committed[0] == zone:
            m = self.s.field("ct_mark", committed[1])
            return base & ((self.valid_orig & self.st(ct.TRK | ct.EST) & m)
                           | (~self.valid_orig & self.st(ct.TRK | ct.INV) & self.mark0) | self.frag_inv)
        return base & self._relation(self.conns.get(zone, self.s.false))

    # -- solving -----------------------------------------------------------------------
    def solve(self, max_rounds: int = 6) -> Solution:
        """Reach sets from every host port, to the fixpoint of the connections packets can commit.

        Round 1 knows no connection. Each later round re-sends only the headers whose
        lookup the connections found so far change (their 5-tuple, either way; ICMP
        errors; later fragments of those addresses): every other header meets the
        tracker exactly as in round 1, so its reach is already known."""
        s = self.s
        self.conns: dict[int, object] = {}
        self._commits: list[Commit] = []
        self._visits = 0
        self._loops: list[str] = []
        reach: dict[Port, dict[Port, object]] = {}
        first = None
        only = s.true
        for rnd in range(1, max_rounds + 1):
            self._rel_cache: dict = {}
            self._new: dict[int, object] = {}
            for src in sorted(self.edges):
                for dst, u in self._inject(src, only).items():
                    row = reach.setdefault(src, {})
                    row[dst] = row.get(dst, s.false) | u
            if first is None:
                first = {a: dict(row) for a, row in reach.items()}
            grown = False
            for z, c in self._new.items():
                old = self.conns.get(z, s.false)
                if c & ~old != s.false:
                    self.conns[z] = old | c
                    grown = True
            if not grown:
                return Solution(reach, first, self._commits, rnd, self._visits, self._loops, sorted(self.edges))
            only = self._affected()
        raise RuntimeError(f"connection fixpoint not reached in {max_rounds} rounds")

    def _affected(self):
        """Headers whose ct() lookup the known connections change (any zone)."""
        s, out = self.s, self.s.false
        for conns in self.conns.values():
            keys = s.forget(conns, "ct_mark")
            addr = s.forget(keys, "tp_src", "tp_dst")
            out |= keys | s.rename(keys, SWAP) | self.icmp_err
            out |= self.later & (addr | s.rename(addr, SWAP_IP))
        return out

    def _inject(self, src: Port, only) -> dict[Port, object]:
        """Everything a host at src can send (within `only`), pushed through until it is delivered or dropped."""
        s = self.s
        out: dict[Port, object] = {}
        seen: dict[_Where, object] = {}
        sendable = self.sendable() & only
        work: deque = deque()
        rest = sendable
        for et in SPLIT_TYPES:  # one part per ethertype a rule names: each meets only its own rules
            one = s.field("eth_type", et)
            work.append((_Where(src[0], 0, src[1], (), None, None, et), sendable & one, 0))
            rest &= ~one
        work.append((_Where(src[0], 0, src[1], (), None, None, None), rest, 0))
        while work:
            w, pkt, hops = work.popleft()
            if w.table == 0:  # a switch's ingress: where a loop would come back, so remember what came
                old = seen.get(w, s.false)
                pkt = pkt & ~old
                if pkt == s.false:
                    continue
                seen[w] = old | pkt
            self._visits += 1
            if hops > MAX_HOPS:
                self._loops.append(f"{src} -> {w.dp}: more than {MAX_HOPS} hops")
                continue
            if w.eth_dst is None:
                self._split(src, w, pkt, hops, work, out)
            else:
                self._table(src, w, pkt, hops, work, out)
        return {dst: s.headers_only(u) for dst, u in out.items()}

    def _split(self, src: Port, w: _Where, pkt, hops: int, work: deque, out: dict) -> None:
        """A packet whose destination MAC is not one value meets a table: one part per MAC the table
        names (each then meets only its own rules), and the rest, which meets only the others."""
        s = self.s
        rest = pkt
        for mac in self._macs_at(w.dp, w.table, w.in_port, w.eth_type):
            one = s.field("eth_dst", mac)
            sub = rest & one
            if sub == s.false:
                continue
            rest = rest & ~one
            self._table(src, replace(w, eth_dst=mac), sub, hops, work, out)
        if rest != s.false:
            self._table(src, w, rest, hops, work, out)

    def _macs_at(self, dp: str, table: int, in_port: int, eth_type: int | None) -> list[int]:
        """The destination MACs named by the rules a packet of this ethertype from in_port can meet here."""
        key = (dp, table, in_port, eth_type)
        got = self._macs.get(key)
        if got is None:
            got = self._macs[key] = sorted({mac for r in self._visible(dp, table, in_port, eth_type)
                                            if (mac := _named_mac(r)) is not None})
        return got

    def _table(self, src: Port, w: _Where, pkt, hops: int, work: deque, out: dict) -> None:
        s = self.s
        rewrites = dict(w.rewrites)
        remaining = pkt
        for rule, m in self._rules_at(w.dp, w.table, w.in_port, w.eth_dst, w.eth_type):
            if rewrites and any(f in rewrites for f in rule["match"]):
                m = self._restricted(rule, m, w.rewrites)
            hit = remaining & m
            if hit == s.false:
                continue
            remaining = remaining & ~m
            self._apply(src, w, rule, hit, hops, work, out)
            if remaining == s.false:
                return
        # table miss: OpenFlow 1.3 drops (the plans also install an explicit drop at priority 0)

    def _apply(self, src: Port, w: _Where, rule: dict, pkt, hops: int, work: deque, out: dict) -> None:
        rewrites = dict(w.rewrites)
        committed = w.committed
        eth_dst = w.eth_dst
        for a in rule.get("actions", []):
            if "set_field" in a:
                for f, v in a["set_field"].items():
                    if f == "ct_mark":
                        pkt = self.s.set_to(pkt, "ct_mark", int(v))
                    else:
                        rewrites[f] = to_int(f, v)
                        if f == "eth_dst":
                            eth_dst = rewrites[f]
            elif "output" in a:
                self._output(src, w, a["output"], pkt, tuple(sorted(rewrites.items())), committed, eth_dst, hops,
                             work, out)
            elif "ct" in a:
                parts = self._ct(src, a["ct"], pkt, committed)
                if "table" in a["ct"]:  # recirculates: the packet goes on there, with the tracker's answer
                    for part, ctx in parts:
                        work.append((replace(w, table=a["ct"]["table"], rewrites=tuple(sorted(rewrites.items())),
                                             committed=ctx, eth_dst=eth_dst), part, hops))
                    return
                # without table=, OVS continues with the state it had (the answer is never visible); a commit
                # still happened
                committed = parts[0][1] if len(parts) == 1 else committed
        if rule.get("goto") is not None:
            work.append((replace(w, table=rule["goto"], rewrites=tuple(sorted(rewrites.items())),
                                 committed=committed, eth_dst=eth_dst), pkt, hops))

    def _ct(self, src: Port, spec: dict, pkt, committed) -> list[tuple[object, tuple[int, int] | None]]:
        """The tracker's answer for pkt, split by what it leaves behind: [(packets, connection context)].

        A commit records the 5-tuples and mark of the packets it can commit (not +inv,
        not an ICMP error, not a later fragment: its datagram's first fragment carries
        the ports), and those packets' next lookup in the zone finds the connection."""
        s = self.s
        zone = int(spec.get("zone", 0))
        looked = self._lookup(pkt, zone, committed)
        if not spec.get("commit"):
            return [(looked, committed)]
        mark = int(spec.get("mark", 0))
        ok = looked & ~self.inv & ~self.icmp_err & ~self.later
        rest = looked & ~ok
        out = []
        if ok != s.false:
            headers = s.headers_only(ok)
            self._commits.append(Commit(src, zone, mark, headers))
            key = s.forget(headers, *[f for f in HEADER if f not in KEY]) & s.field("ct_mark", mark)
            self._new[zone] = self._new.get(zone, s.false) | key
            # the packet carries the mark it was committed with
            out.append((s.set_to(ok, "ct_mark", mark) if "mark" in spec else ok, (zone, mark)))
        if rest != s.false:
            out.append((rest, committed))
        return out

    def _output(self, src: Port, w: _Where, port: int, pkt, rewrites, committed, eth_dst, hops: int,
                work: deque, out: dict) -> None:
        if port == OFPP_IN_PORT:
            targets = [w.in_port]
        elif port in (OFPP_FLOOD, OFPP_ALL, OFPP_NORMAL):
            targets = sorted(p for p in self.ports.get(w.dp, ()) if p != w.in_port)
        elif port == OFPP_CONTROLLER:
            out[CONTROLLER_PORT] = out.get(CONTROLLER_PORT, self.s.false) | pkt
            return
        elif port == w.in_port:
            return  # OpenFlow never sends a packet back where it came from unless told IN_PORT
        else:
            targets = [port]
        for p in targets:
            here = (w.dp, p)
            if here in self.links:
                peer = self.links[here]
                work.append((_Where(peer[0], 0, peer[1], rewrites, committed, eth_dst, w.eth_type), pkt, hops + 1))
            else:  # a host port, or one the model does not know (LOCAL included): delivered there
                dst = (w.dp, p if p != OFPP_LOCAL else OFPP_LOCAL)
                out[dst] = out.get(dst, self.s.false) | pkt


def _named_mac(rule: dict) -> int | None:
    """The one destination MAC a rule names (None: it matches any, or a masked set)."""
    d = rule["match"].get("eth_dst")
    return None if d is None or isinstance(d, list) else to_int("eth_dst", d)
