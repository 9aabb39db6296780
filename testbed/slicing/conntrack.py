"""Connection tracking as the slice rules use it: state bits, the run's zone, and reading the tracker.

Pure functions (no switch needed), shared by the rule compiler (flows.py), the
fake flow table (simulate.py), `testbed slice revoke` (which ends a member's
tracked connections) and `testbed flows`.

Why one zone per run, and the slice in the mark: every switch of a run is a
bridge of the same ovs-vswitchd, and all bridges of one datapath type share one
datapath and one connection tracker (the userspace datapath's own, or the
kernel's per network namespace). Concurrent runs share it too, and they reuse
addresses (two runs of topologies/minimal.yaml both use 10.77.0.0/24), so a
run's connections must live in a zone no other run uses: the zone is the run
id (4 hex digits = the 16 bits of a zone, unique among live runs). Inside a run
addresses are unique, so the 5-tuple alone identifies a connection; the slice
that admitted it is written into its ct_mark when it is committed, and the
rules that pass established traffic match that mark (so replies get the
admitting slice's DSCP and meter), and `revoke` ends exactly the member's
connections of that slice.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

# ct_state bits (OVS: ovs-fields(7) "ct_state")
NEW, EST, REL, RPL, INV, TRK = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_BITS = (("new", NEW), ("est", EST), ("rel", REL), ("rpl", RPL), ("inv", INV), ("trk", TRK))

# TCP flags (tcp_flags match: value/mask over the 12 flag bits)
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

# ip_frag match bits (NXM_NX_IP_FRAG): ANY set for every fragment, LATER for offset != 0
FRAG_ANY, FRAG_LATER = 0x1, 0x2


def ct_zone(run_id: str) -> int:
    """The conntrack zone of a run: its 4-hex id as a number (unique among live runs)."""
    try:
        return int(run_id, 16) & 0xFFFF
    except ValueError:  # not a run id the testbed made: still a stable zone
        return zlib.crc32(run_id.encode()) & 0xFFFF


def state(text: str) -> list[int]:
    """'+trk+new-inv' -> [value, mask], the form plan rules match ct_state with."""
    value = mask = 0
    for sign, name in re.findall(r"([+-])(\w+)", text):
        bit = dict(_BITS)[name]
        mask |= bit
        if sign == "+":
            value |= bit
    return [value, mask]


def state_text(value: int, mask: int | None = None) -> str:
    """[value, mask] -> '+new-est+trk' (ovs-ofctl's spelling, for notes and tests)."""
    mask = value if mask is None else mask
    return "".join(("+" if value & bit else "-") + name for name, bit in _BITS if mask & bit)


@dataclass(frozen=True)
class Conn:
    """One entry of `ovs-appctl dpctl/dump-conntrack`, by its original direction."""

    proto: str  # 'tcp' | 'udp' | 'icmp' | another protocol name or number
    src: str
    dst: str
    sport: int | None = None
    dport: int | None = None
    icmp_id: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    zone: int = 0
    mark: int = 0
    tcp_state: str | None = None

    def tuple(self) -> str:
        """The original-direction tuple in `dpctl/flush-conntrack` syntax (complete, so any OVS version
        deletes exactly this entry)."""
        num = {"tcp": 6, "udp": 17, "icmp": 1}.get(self.proto, self.proto)
        out = f"ct_nw_src={self.src},ct_nw_dst={self.dst},ct_nw_proto={num}"
        if self.proto == "icmp":
            out += f",icmp_id={self.icmp_id},icmp_type={self.icmp_type},icmp_code={self.icmp_code}"
        elif self.sport is not None:
            out += f",ct_tp_src={self.sport},ct_tp_dst={self.dport}"
        return out


_LINE = re.compile(r"^(\w+),orig=\(([^)]*)\)")


def parse_conntrack(text: str) -> list[Conn]:
    """Lines of `ovs-appctl dpctl/dump-conntrack [zone=N]` -> Conn (IPv4 entries; others skipped)."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        orig = dict(kv.split("=", 1) for kv in m.group(2).split(",") if "=" in kv)
        if "src" not in orig or ":" in orig["src"]:
            continue
        rest = dict(re.findall(r"(?:^|,)(zone|mark)=(\w+)", line[m.end():]))
        tcp_state = re.search(r"state(?:_orig)?=(\w+)", line)

        def num(key: str) -> int | None:
            return int(orig[key]) if key in orig else None

        out.append(Conn(proto=m.group(1), src=orig["src"], dst=orig["dst"], sport=num("sport"),
                        dport=num("dport"), icmp_id=num("id"), icmp_type=num("type"), icmp_code=num("code"),
                        zone=int(rest.get("zone", 0)), mark=int(rest.get("mark", "0"), 0),
                        tcp_state=tcp_state.group(1) if tcp_state else None))
    return out


def opened_by(conns: list[Conn], member_ip: str, slice_id: int) -> list[Conn]:
    """The connections `member_ip` opened in the slice with `slice_id` (its ct_mark): what a revoke ends.

    Only the member's own connections: those it accepted as a provider belong to
    the slices of whoever opened them, and stay.
    """
    return [c for c in conns if c.src == member_ip and c.mark == slice_id]
