"""`ovs-ofctl -O OpenFlow13 dump-flows` text -> rules in the plan's form, to verify what a switch really holds.

The verifier must read the switches, not the controller's plan: a rule the
controller failed to install, one somebody deleted by hand, or one another app
added all change what can get through. The plan's form (testbed.slicing.flows)
is the common language: {"table", "priority", "match", "actions", "goto",
"meter"}, masked fields as [value, mask], actions {"output"}, {"set_field"},
{"ct"}. Anything this parser does not understand raises UnsupportedFlow: a
rule the model skipped would make the proof unsound.
"""
from __future__ import annotations

import re

from testbed.errors import TestbedError
from testbed.slicing import conntrack as ct
from testbed.verify.headers import ETH_ARP, ETH_IP

OFPP_IN_PORT, OFPP_FLOOD, OFPP_ALL, OFPP_NORMAL, OFPP_CONTROLLER, OFPP_LOCAL = (
    0xFFFFFFF8, 0xFFFFFFFB, 0xFFFFFFFC, 0xFFFFFFFA, 0xFFFFFFFD, 0xFFFFFFFE)
_PORTS = {"in_port": OFPP_IN_PORT, "flood": OFPP_FLOOD, "all": OFPP_ALL, "normal": OFPP_NORMAL,
          "controller": OFPP_CONTROLLER, "local": OFPP_LOCAL}
_SHORT = {"ip": {"eth_type": ETH_IP}, "arp": {"eth_type": ETH_ARP},
          "tcp": {"eth_type": ETH_IP, "ip_proto": 6}, "udp": {"eth_type": ETH_IP, "ip_proto": 17},
          "icmp": {"eth_type": ETH_IP, "ip_proto": 1}}
_RENAME = {"dl_src": "eth_src", "dl_dst": "eth_dst", "dl_type": "eth_type", "nw_src": "ipv4_src",
           "nw_dst": "ipv4_dst", "nw_proto": "ip_proto", "icmp_type": "icmpv4_type", "icmp_code": "icmpv4_code",
           "ip_dscp": "ip_dscp", "eth_src": "eth_src", "eth_dst": "eth_dst", "eth_type": "eth_type",
           "ip_src": "ipv4_src", "ip_dst": "ipv4_dst", "tp_src": "tp_src", "tp_dst": "tp_dst",
           "arp_op": "arp_op", "arp_spa": "arp_spa", "arp_tpa": "arp_tpa", "arp_sha": "arp_sha",
           "arp_tha": "arp_tha", "ct_mark": "ct_mark", "ipv4_src": "ipv4_src", "ipv4_dst": "ipv4_dst",
           "ip_proto": "ip_proto", "icmpv4_type": "icmpv4_type", "icmpv4_code": "icmpv4_code",
           "tcp_src": "tp_src", "tcp_dst": "tp_dst", "udp_src": "tp_src", "udp_dst": "tp_dst"}
_FRAG = {"no": [0, ct.FRAG_ANY], "yes": [ct.FRAG_ANY, ct.FRAG_ANY],
         "first": [ct.FRAG_ANY, ct.FRAG_ANY | ct.FRAG_LATER],
         "later": [ct.FRAG_ANY | ct.FRAG_LATER, ct.FRAG_ANY | ct.FRAG_LATER], "not_later": [0, ct.FRAG_LATER]}
_TCP_FLAG = {"fin": 0x001, "syn": 0x002, "rst": 0x004, "psh": 0x008, "ack": 0x010, "urg": 0x020,
             "ece": 0x040, "cwr": 0x080, "ns": 0x100}
_IGNORED_STATS = ("cookie", "duration", "table", "n_packets", "n_bytes", "idle_age", "hard_age",
                  "idle_timeout", "hard_timeout", "reset_counts", "send_flow_rem", "importance")


class UnsupportedFlow(TestbedError):
    """A flow the symbolic model cannot represent (verification would be unsound if it skipped it)."""


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses: `ct(commit,table=2),goto_table:3` -> 2 actions."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


def _num(text: str) -> int:
    return int(text, 0)


def _value(field: str, text: str) -> int | str | list:
    """A match value: 'v' or 'v/mask' (MACs and addresses stay text for headers.to_int; CIDR -> mask)."""
    v, _, m = text.partition("/")
    if field in ("ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa"):
        from testbed.verify.headers import to_int
        if not m:
            return v
        mask = (0xFFFFFFFF << (32 - int(m))) & 0xFFFFFFFF if m.isdigit() else to_int(field, m)
        return [to_int(field, v), mask]
    if field in ("eth_src", "eth_dst", "arp_sha", "arp_tha"):
        from testbed.verify.headers import to_int
        return [to_int(field, v), to_int(field, m)] if m else v
    return [_num(v), _num(m)] if m else _num(v)


def _tcp_flags(text: str) -> list[int]:
    if text[0] not in "+-":
        v = _value("tcp_flags", text)
        return v if isinstance(v, list) else [v, 0xFFF]
    value = mask = 0
    for sign, name in re.findall(r"([+-])(\w+)", text):
        bit = _TCP_FLAG[name]
        mask |= bit
        value |= bit if sign == "+" else 0
    return [value, mask]


def parse_match(text: str) -> tuple[int, dict]:
    """'priority=200,ip,in_port=3,...' -> (priority, match)."""
    prio, match = 32768, {}
    for item in split_top(text):
        k, eq, v = item.partition("=")
        if not eq:
            if k not in _SHORT:
                raise UnsupportedFlow(f"match {k!r} is not modelled")
            match.update(_SHORT[k])
        elif k == "priority":
            prio = int(v)
        elif k in _IGNORED_STATS:
            continue
        elif k == "in_port":
            if not v.isdigit():
                raise UnsupportedFlow(f"in_port={v}: read the flows without --names")
            match["in_port"] = int(v)
        elif k == "vlan_tci":
            val = _value(k, v)
            val, mask = val if isinstance(val, list) else (val, 0xFFFF)
            if mask & 0x1FFF:
                match["vlan_vid"] = [val & 0x1FFF, mask & 0x1FFF]
        elif k == "dl_vlan":
            match["vlan_vid"] = [0x1000 | int(v), 0x1FFF]
        elif k == "ct_state":
            match["ct_state"] = ct.state(v)
        elif k == "nw_frag":
            match["ip_frag"] = _FRAG[v]
        elif k == "tcp_flags":
            match["tcp_flags"] = _tcp_flags(v)
        elif k == "nw_tos":
            match["ip_dscp"] = int(v) >> 2
        elif k in _RENAME:
            match[_RENAME[k]] = _value(_RENAME[k], v)
        else:
            raise UnsupportedFlow(f"match field {k!r} is not modelled")
    return prio, match


def _port(text: str) -> int:
    t = text.strip().lower()
    if t in _PORTS:
        return _PORTS[t]
    if t.startswith("controller"):
        return OFPP_CONTROLLER
    if t.isdigit():
        return int(t)
    raise UnsupportedFlow(f"output to {text!r} is not modelled")


def _set_field(text: str) -> dict:
    value, _, field = text.partition("->")
    field = _RENAME.get(field, field)
    if field in ("eth_src", "eth_dst"):
        return {field: value}
    return {field: _num(value)}


def parse_actions(text: str) -> tuple[list[dict], int | None, int | None]:
    """'meter:2,set_field:18->ip_dscp,ct(commit,table=2,zone=9,exec(set_field:0x6->ct_mark))'
    -> (actions, goto table, meter)."""
    actions: list[dict] = []
    goto = meter = None
    for a in split_top(text):
        low = a.lower()
        if low == "drop":
            continue
        if low.startswith("goto_table:"):
            goto = int(a.split(":", 1)[1])
        elif low.startswith("meter:"):
            meter = int(a.split(":", 1)[1])
        elif low.startswith("output:"):
            actions.append({"output": _port(a.split(":", 1)[1])})
        elif low.startswith(("set_field:", "load:")) and low.startswith("set_field:"):
            actions.append({"set_field": _set_field(a.split(":", 1)[1])})
        elif low.startswith("mod_nw_tos:"):
            actions.append({"set_field": {"ip_dscp": int(a.split(":", 1)[1]) >> 2}})
        elif low.startswith("mod_dl_dst:"):
            actions.append({"set_field": {"eth_dst": a.split(":", 1)[1]}})
        elif low.startswith("mod_dl_src:"):
            actions.append({"set_field": {"eth_src": a.split(":", 1)[1]}})
        elif low.startswith("ct(") and low.endswith(")"):
            actions.append({"ct": _ct(a[3:-1])})
        elif low in _PORTS or low.isdigit() or low.startswith("controller"):
            actions.append({"output": _port(a)})
        else:
            raise UnsupportedFlow(f"action {a!r} is not modelled")
    return actions, goto, meter


def _ct(inner: str) -> dict:
    out: dict = {"commit": False}
    for part in split_top(inner):
        k, _, v = part.partition("=")
        if k == "commit":
            out["commit"] = True
        elif k == "table":
            out["table"] = int(v)
        elif k == "zone":
            if not v[0].isdigit():
                raise UnsupportedFlow(f"ct zone from a field ({v}) is not modelled")
            out["zone"] = int(v, 0)
        elif k.startswith("exec("):
            for sub in split_top(part[5:-1]):
                f = _set_field(sub.split(":", 1)[1]) if sub.startswith("set_field:") else None
                if not f or list(f) != ["ct_mark"]:
                    raise UnsupportedFlow(f"ct exec {sub!r} is not modelled")
                out["mark"] = f["ct_mark"]
        elif k in ("nat", "alg", "force") or k.startswith("nat("):
            raise UnsupportedFlow(f"ct {k} is not modelled")
        else:
            raise UnsupportedFlow(f"ct argument {part!r} is not modelled")
    out.setdefault("zone", 0)
    return out


def parse_flows(text: str) -> list[dict]:
    """Every rule of one switch's dump-flows text, in the plan's form."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("cookie="):
            continue
        head, sep, acts = line.partition(" actions=")
        if not sep:
            raise UnsupportedFlow(f"no actions in {line!r}")
        table = int(re.search(r"\btable=(\d+)", head).group(1)) if "table=" in head else 0
        cookie = int(re.search(r"cookie=(0x[0-9a-f]+)", head).group(1), 16)
        match_text = head.rsplit(" ", 1)[-1] if "priority=" in head.rsplit(" ", 1)[-1] or "," in head.rsplit(" ", 1)[-1] \
            else ""
        prio, match = parse_match(match_text) if match_text else (32768, {})
        actions, goto, meter = parse_actions(acts)
        r = {"table": table, "priority": prio, "match": match, "actions": actions, "cookie": cookie}
        if goto is not None:
            r["goto"] = goto
        if meter is not None:
            r["meter"] = meter
        rules.append(r)
    return rules
