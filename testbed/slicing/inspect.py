"""Read what a switch holds (`ovs-ofctl dump-flows` text), per slice, in the topology's names.

Cookies say which slice and kind of rule (testbed.slicing.cookies); MACs,
IPs and port numbers are replaced by the node names of the run's plan, so
`in_port=3,dl_src=02:7b:00:00:00:04` reads `in_port=3(dr-tablet-01),dl_src=dr-tablet-01`.
Connection-tracking rules read as OVS prints them (`ct_state=+new-est-rel-inv+trk`,
`actions=ct(commit,zone=16290,exec(set_field:0x2->ct_mark),table=2)`), with the
slice a ct_mark stands for: `ct_mark=0x2(clinical)`. Parsing is a pure function of
the dump text, so it unit-tests without a switch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from testbed.slicing.cookies import COMMON, decode_cookie

_FIELD = re.compile(r"(\w+)=([^,\s]+)")
_HIDE = {"vlan_tci=0x0000/0x1fff"}  # "untagged only": on every rule we make, noise when reading


@dataclass
class FlowLine:
    cookie: int
    table: int
    priority: int
    packets: int
    bytes: int
    match: str
    actions: str
    slice: str = "?"
    kind: str = "?"


def parse_dump_flows(text: str) -> list[FlowLine]:
    """Lines of `ovs-ofctl -O OpenFlow13 dump-flows BRIDGE` -> FlowLine (header lines skipped)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("cookie="):
            continue
        head, _, actions = line.partition(" actions=")
        stats, _, match = head.rpartition(" ")
        kv = dict(_FIELD.findall(stats.replace(" ", ",")))
        prio = 0
        parts = []
        for item in match.split(","):
            if item.startswith("priority="):
                prio = int(item.split("=", 1)[1])
            elif item and item not in _HIDE:
                parts.append(item)
        out.append(FlowLine(cookie=int(kv.get("cookie", "0"), 16), table=int(kv.get("table", 0)), priority=prio,
                            packets=int(kv.get("n_packets", 0)), bytes=int(kv.get("n_bytes", 0)),
                            match=",".join(parts), actions=actions))
    return out


def label(flows: list[FlowLine], plan: dict, dpid: str) -> list[FlowLine]:
    """Fill in slice and kind from cookies; put node names in place of MACs, IPs and host ports."""
    names = {s["id"]: name for name, s in plan.get("slices", {}).items()}
    names.setdefault(0, COMMON)
    subst: dict[str, str] = {}
    port_of: dict[str, str] = {}
    for host, rec in plan.get("hosts", {}).items():
        subst[rec["mac"]] = host
        if rec.get("ip"):
            subst[rec["ip"]] = host
        if rec["dpid"] == dpid:
            port_of[str(rec["port"])] = host

    def readable(text: str) -> str:
        def one(m: re.Match) -> str:
            k, v = m.group(1), m.group(2)
            if k == "in_port" and v in port_of:
                return f"{k}={v}({port_of[v]})"
            return f"{k}={subst.get(v, v)}"
        # ct_mark holds the id of the slice that admitted a connection: name it
        text = re.sub(r"(ct_mark=|set_field:)(0x[0-9a-f]+)(?=->ct_mark|[,\s)]|$)",
                      lambda m: f"{m.group(1)}{m.group(2)}({names.get(int(m.group(2), 16), '?')})", text)
        text = re.sub(r"(\w+)=([0-9a-fA-F:.]+)", one, text)
        return re.sub(r"set_field:([0-9a-f:]{17})->", lambda m: f"set_field:{subst.get(m.group(1), m.group(1))}->", text)

    for f in flows:
        dec = decode_cookie(f.cookie)
        if dec is None:
            f.slice, f.kind = "(foreign)", "?"
        else:
            f.slice, f.kind = names.get(dec[0], f"slice#{dec[0]}"), dec[1]
        f.match = readable(f.match)
        f.actions = readable(f.actions)
    return flows
