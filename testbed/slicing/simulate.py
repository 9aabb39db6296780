"""A fake network of OpenFlow switches running a controller plan, connection tracker included.

Faucet keeps a fake flow table (`FakeOFTable`) as a library module and checks
every rule it generates by pushing packets through it; this is the same idea
for the testbed's plans: frames are pushed through each switch's tables and the
wiring's real links, so a leak, a black hole, a missing reply path or a
broadcast crossing slices shows up without building anything (no root).

What is modelled, after Open vSwitch's userspace datapath (lib/conntrack*.c,
lib/ipf.c, OVS 3.1):
- tables: highest priority wins, [value, mask] fields, table miss = drop;
  instructions in OpenFlow order (meter, apply-actions, goto); an output to the
  controller fails the check (the plans never ask for packet-ins);
- ct(zone, table, commit, mark): the lookup gives +trk and +new/+est/+rel/+inv
  (+rpl for the reply direction) as OVS computes them: a TCP segment with
  invalid flags (NULL, Xmas, FIN without ACK, SYN with FIN or RST) is +inv; a
  SYN-ACK with no connection is +inv; any other TCP segment with no connection
  is +new (OVS picks up connections mid-stream, so only a rule that insists
  on SYN keeps ACK scans out); UDP is +new or +est; ICMP echo request +new,
  echo reply +est only for a tracked request, errors +rel only when the packet
  they quote belongs to a connection, other ICMP +inv. Commit records the
  connection and its mark. A recirculating ct() continues in its table with
  the packet's state, mark and zone;
- fragments (ip_frag, the ipf module): the tracker holds a datagram's
  fragments until it has them all, then decides the whole datagram's state and
  lets every fragment go on with it; overlapping fragments drop the datagram;
  a non-last fragment smaller than the minimum size is not reassembled, and
  the tracker calls it invalid; fragments never completed expire, and OVS 3.1
  releases expired fragments marked invalid into whichever ct() batch runs
  next, so they are tried against every table a ct() recirculates to.

`verify.py` (`verify_rule`/`verify_plan`) checks what OVS would refuse or what
makes the pipeline unsound, before anything is installed; this module assumes
a plan that passed it.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from testbed.openflow.wiring import Wiring
from testbed.slicing import conntrack as ct

ETH_IP, ETH_ARP = 0x0800, 0x0806
PROTO = {"icmp": 1, "tcp": 6, "udp": 17}
MIN_FRAG_SIZE = 1200  # OVS 3.1 ipf: smallest non-last IPv4 fragment it reassembles (dpctl/ipf-get-status)
ICMP_ERRORS = {3, 4, 5, 11, 12}
CONTROLLER = 0xFFFFFFFD
MAX_STEPS = 10_000

_L4 = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst")}


def _key(pkt: dict) -> tuple:
    """The tracker's key of a packet in its own direction."""
    proto = pkt.get("ip_proto")
    if proto in _L4:
        s, d = _L4[proto]
        return proto, pkt["ipv4_src"], pkt["ipv4_dst"], pkt.get(s), pkt.get(d)
    if proto == 1:
        return 1, pkt["ipv4_src"], pkt["ipv4_dst"], pkt.get("icmp_id", 0)
    return proto, pkt["ipv4_src"], pkt["ipv4_dst"]


def _reverse(key: tuple) -> tuple:
    if len(key) == 5:
        return key[0], key[2], key[1], key[4], key[3]
    return (key[0], key[2], key[1], *key[3:])


def _tcp_invalid(flags: int) -> bool:
    """OVS conntrack-tcp.c tcp_invalid_flags()."""
    if flags & ct.SYN:
        if flags & (ct.RST | ct.FIN):
            return True
    elif not flags & (ct.ACK | ct.RST):
        return True
    return not flags & ct.ACK and bool(flags & (ct.FIN | ct.PSH | ct.URG))


@dataclass
class Conntrack:
    """One tracker (a datapath's): connections by zone and original-direction key, with their mark."""

    conns: dict[tuple[int, tuple], int] = field(default_factory=dict)

    def _find(self, zone: int, key: tuple) -> tuple[tuple | None, bool]:
        if (zone, key) in self.conns:
            return key, False
        if (zone, _reverse(key)) in self.conns:
            return _reverse(key), True
        return None, False

    def lookup(self, zone: int, pkt: dict) -> tuple[int, int]:
        """(ct_state bits, ct_mark) of `pkt` in `zone`."""
        if pkt.get("eth_type") != ETH_IP:
            return ct.INV, 0
        proto, key = pkt.get("ip_proto"), _key(pkt)
        if proto == 1:
            t = pkt.get("icmpv4_type")
            if t in ICMP_ERRORS:
                inner = pkt.get("inner")
                orig, _ = self._find(zone, _key(inner)) if inner else (None, False)
                return (ct.TRK | ct.REL, self.conns[(zone, orig)]) if orig else (ct.TRK | ct.INV, 0)
            orig, reply = self._find(zone, key)
            if t == 8:
                return (ct.TRK | ct.EST, self.conns[(zone, orig)]) if orig and not reply else (ct.TRK | ct.NEW, 0)
            if t == 0 and orig and reply:
                return ct.TRK | ct.EST | ct.RPL, self.conns[(zone, orig)]
            return ct.TRK | ct.INV, 0
        orig, reply = self._find(zone, key)
        if proto == 6:
            flags = pkt.get("tcp_flags", 0)
            if _tcp_invalid(flags):
                return ct.TRK | ct.INV, 0
            if orig is None:
                both = ct.SYN | ct.ACK
                return (ct.TRK | ct.INV, 0) if flags & both == both else (ct.TRK | ct.NEW, 0)
        if orig is None:
            return ct.TRK | ct.NEW, 0
        return ct.TRK | ct.EST | (ct.RPL if reply else 0), self.conns[(zone, orig)]

    def commit(self, zone: int, pkt: dict, state: int, mark: int | None) -> int:
        """Commit `pkt`'s connection (if it is new or known); returns its mark."""
        if state & ct.INV or pkt.get("eth_type") != ETH_IP:
            return 0
        if pkt.get("ip_proto") == 1 and pkt.get("icmpv4_type") in ICMP_ERRORS:
            return 0  # related packets are not connections of their own
        orig, _ = self._find(zone, _key(pkt))
        orig = orig or _key(pkt)
        if mark is not None:
            self.conns[(zone, orig)] = mark
        else:
            self.conns.setdefault((zone, orig), 0)
        return self.conns[(zone, orig)]

    def entries(self, zone: int | None = None) -> list[ct.Conn]:
        """What `dpctl/dump-conntrack [zone=Z]` would list, as conntrack.Conn."""
        return [_as_conn(z, key, mark) for (z, key), mark in self.conns.items() if zone in (None, z)]

    def flush(self, zone: int, conns: list[ct.Conn]) -> None:
        """Delete these entries, as `dpctl/flush-conntrack zone=Z TUPLE` for each does."""
        wanted = {c.tuple() for c in conns}
        for (z, key), mark in list(self.conns.items()):
            if z == zone and _as_conn(z, key, mark).tuple() in wanted:
                del self.conns[(z, key)]


def _as_conn(zone: int, key: tuple, mark: int) -> ct.Conn:
    proto = {6: "tcp", 17: "udp", 1: "icmp"}.get(key[0], str(key[0]))
    if len(key) == 5:
        return ct.Conn(proto, key[1], key[2], sport=key[3], dport=key[4], zone=zone, mark=mark)
    if key[0] == 1:
        return ct.Conn(proto, key[1], key[2], icmp_id=key[3], icmp_type=8, icmp_code=0, zone=zone, mark=mark)
    return ct.Conn(proto, key[1], key[2], zone=zone, mark=mark)


@dataclass
class _Held:
    sw: str
    in_port: int
    pkt: dict
    table: int  # where the ct() that holds it recirculates


class FakeNetwork:
    """A plan's switches, wired as built, with one shared connection tracker (like one datapath).

    `send(host, *frames)` pushes frames in from `host` and returns [(host, frame as received)].
    Pass `tracker` to keep connections across plans (a live grant/revoke installs a new plan,
    the tracker keeps its entries).
    """

    def __init__(self, plan: dict, wiring: Wiring, tracker: Conntrack | None = None):
        self.plan = plan
        self.w = wiring
        self.ct = tracker if tracker is not None else Conntrack()
        self._tables: dict[tuple[str, int], list[dict]] = {}
        for sw, dp in wiring.dpids.items():
            for r in plan["switches"].get(dp, []):
                self._tables.setdefault((sw, r.get("table", 0)), []).append(r)
        for rules in self._tables.values():
            rules.sort(key=lambda r: -r["priority"])
        self.recirc_tables = sorted({a["ct"]["table"] for rules in plan["switches"].values() for r in rules
                                     for a in r.get("actions", []) if "ct" in a and "table" in a["ct"]})
        self.frag_first_has_ports = plan.get("frag_mode") == "nx-match"
        self._ipf: dict[tuple, list[_Held]] = {}
        self.meters: list[int] = []  # meter ids packets went through, in order

    # -- tables ------------------------------------------------------------------------
    @staticmethod
    def matches(rule_match: dict, pkt: dict) -> bool:
        for k, v in rule_match.items():
            pv = pkt.get(k)
            if isinstance(v, list):
                if pv is None or pv & v[1] != v[0]:
                    return False
            elif pv != v:
                return False
        return True

    def lookup(self, sw: str, table: int, pkt: dict) -> dict | None:
        for r in self._tables.get((sw, table), []):
            if self.matches(r["match"], pkt):
                return r  # sorted by priority; equal priorities must not overlap (verify_plan)
        return None

    # -- packets -----------------------------------------------------------------------
    def _as_seen(self, pkt: dict) -> dict:
        """What a switch's flow key holds: OpenFlow's 'normal' fragment mode zeroes every fragment's ports."""
        if pkt.get("ip_frag") and not self.frag_first_has_ports:
            for f in (*_L4.get(pkt.get("ip_proto"), ()), "icmpv4_type"):
                if f in pkt:
                    pkt = {**pkt, f: 0}
        return pkt

    def send(self, host: str, *frames: dict) -> list[tuple[str, dict]]:
        sw, port, _ = self.w.hosts[host]
        work = deque((sw, port, {"vlan_vid": 0, **f}, 0) for f in frames)
        received = self._run(work)
        # Fragments the tracker never completed expire and come back marked invalid.
        for key, held in list(self._ipf.items()):
            del self._ipf[key]
            for h in held:
                for table in self.recirc_tables:
                    work.append((h.sw, h.in_port, {**h.pkt, "ct_state": ct.INV}, table))
        return received + self._run(work)

    def _run(self, work: deque) -> list[tuple[str, dict]]:
        received = []
        steps = 0
        while work:
            steps += 1
            assert steps < MAX_STEPS, "forwarding or recirculation loop"
            sw, in_port, pkt, table = work.popleft()
            pkt = {**pkt, "in_port": in_port}
            while True:
                r = self.lookup(sw, table, self._as_seen(pkt))
                if r is None:
                    break  # table miss: drop
                if r.get("meter") is not None:
                    self.meters.append(r["meter"])
                outs, recirculated = [], False
                for a in r.get("actions", []):
                    if "set_field" in a:
                        pkt = {**pkt, **a["set_field"]}
                    elif "output" in a:
                        outs.append(a["output"])
                    elif "ct" in a:
                        self._ct(sw, in_port, pkt, a["ct"], work)
                        recirculated = True
                        break
                for out in outs:
                    assert out != CONTROLLER, "rule sends to the controller"
                    peer = next((peer, pp) for p, peer, pp in self.w.ports[sw] if p == out)
                    if peer[0] in self.w.dpids:
                        work.append((peer[0], peer[1], pkt, 0))
                    else:
                        received.append((peer[0], pkt))
                if recirculated or r.get("goto") is None:
                    break
                table = r["goto"]
        return received

    def _ct(self, sw: str, in_port: int, pkt: dict, act: dict, work: deque) -> None:
        zone = act.get("zone", 0)
        table = act.get("table")
        assert table is not None, "a ct() that does not recirculate (verify_plan refuses it)"
        if pkt.get("ip_frag"):
            frag = pkt["frag"]
            if frag["size"] < MIN_FRAG_SIZE and frag["more"]:
                work.append((sw, in_port, {**pkt, "ct_state": ct.TRK | ct.INV, "ct_zone": zone}, table))
                return
            key = (zone, pkt["ipv4_src"], pkt["ipv4_dst"], pkt.get("ip_proto"), frag["id"])
            held = self._ipf.setdefault(key, [])
            if any(h.pkt["frag"]["index"] == frag["index"] or h.pkt["datagram"] != pkt["datagram"] for h in held):
                del self._ipf[key]  # overlapping fragments: the datagram is dropped
                return
            held.append(_Held(sw, in_port, pkt, table))
            last = [h.pkt["frag"]["index"] for h in held if not h.pkt["frag"]["more"]]
            if not last or len(held) != last[0] + 1:
                return
            del self._ipf[key]
            whole = pkt["datagram"]
            st, mark = self.ct.lookup(zone, whole)
            if act.get("commit"):
                mark = self.ct.commit(zone, whole, st, act.get("mark"))
            for h in sorted(held, key=lambda h: h.pkt["frag"]["index"]):
                work.append((h.sw, h.in_port, {**h.pkt, "ct_state": st, "ct_mark": mark, "ct_zone": zone}, table))
            return
        st, mark = self.ct.lookup(zone, pkt)
        if act.get("commit"):
            mark = self.ct.commit(zone, pkt, st, act.get("mark"))
        work.append((sw, in_port, {**pkt, "ct_state": st, "ct_mark": mark, "ct_zone": zone}, table))


# -- frames ----------------------------------------------------------------------------
def fragments(frame: dict, sizes: list[int], ident: int = 0x1234) -> list[dict]:
    """Split an IP frame into fragments of these payload sizes (the first one keeps the L4 header
    fields, later ones carry none), as a sender or an attacker would put them on the wire."""
    l4 = {"tcp_src", "tcp_dst", "udp_src", "udp_dst", "tcp_flags", "icmpv4_type", "icmp_id", "inner"}
    out = []
    for i, size in enumerate(sizes):
        f = {k: v for k, v in frame.items() if i == 0 or k not in l4}
        f.update(ip_frag=ct.FRAG_ANY | (ct.FRAG_LATER if i else 0), datagram=frame,
                 frag={"id": ident, "index": i, "more": i < len(sizes) - 1, "size": size})
        out.append(f)
    return out
