"""Reach (what the switches let through) against the policy (what they should): leaks and false blocks.

Every ordered pair of host ports is compared over every header at once; each
difference comes with one concrete header, chosen to read like real traffic
(the sender's own addresses, untagged, unfragmented where the set allows), and,
when it passes only as part of a tracked connection, with a packet that opens
that connection (replay sends that first).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from testbed.verify.headers import ETH_IP, HEADER, KEY, Space, from_int
from testbed.verify.network import CONTROLLER_PORT, SWAP, Port, Solution

PROTO_NAME = {1: "icmp", 6: "tcp", 17: "udp"}


@dataclass
class Finding:
    """A leak (reachable beyond the policy) or a false block (granted, unreachable), with its witness."""
    kind: str  # "leak" | "false-block"
    src_port: Port
    dst_port: Port
    src: str  # host names at the ports ('/'-joined when shared)
    dst: str
    header: dict[str, int]
    headers: int  # how many headers of the pair differ
    opener: dict | None = None  # {"port", "host", "header"}: a packet that opens the connection it needs
    replay: str = ""  # "confirmed" | "refuted" | "not replayed: why"
    replay_detail: str = ""

    def describe(self) -> str:
        return describe(self.header)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "src": self.src, "dst": self.dst, "src_port": list(self.src_port),
                "dst_port": list(self.dst_port), "header": readable(self.header), "summary": self.describe(),
                "headers": str(self.headers), "needs_connection": self.opener is not None,
                "opener": None if self.opener is None else {
                    "host": self.opener["host"], "summary": describe(self.opener["header"]),
                    "header": readable(self.opener["header"])},
                "replay": self.replay, "replay_detail": self.replay_detail}


@dataclass
class Comparison:
    findings: list[Finding] = field(default_factory=list)
    pairs: int = 0
    pairs_with_traffic: int = 0

    @property
    def leaks(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "leak"]

    @property
    def false_blocks(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "false-block"]


def readable(h: dict[str, int]) -> dict:
    """Only the fields that mean something for this frame, MACs and addresses as text."""
    keep = ["eth_src", "eth_dst", "eth_type", "vlan_vid"]
    if h.get("eth_type") == ETH_IP:
        keep += ["ipv4_src", "ipv4_dst", "ip_proto", "ip_frag", "ip_dscp"]
        keep += {6: ["tp_src", "tp_dst", "tcp_flags"], 17: ["tp_src", "tp_dst"],
                 1: ["icmpv4_type", "icmpv4_code"]}.get(h.get("ip_proto"), [])
    elif h.get("eth_type") == 0x0806:
        keep += ["arp_op", "arp_sha", "arp_spa", "arp_tpa"]
    return {k: from_int(k, h[k]) for k in keep if k in h}


def describe(h: dict[str, int]) -> str:
    """One line: 'tcp 10.77.0.5:443 -> 10.77.0.1:1 [SA]' and the like."""
    r = readable(h)
    vlan = f" vlan {r['vlan_vid'] & 0xFFF}" if r.get("vlan_vid", 0) & 0x1000 else ""
    if h.get("eth_type") == 0x0806:
        op = {1: "who-has", 2: "is-at"}.get(r["arp_op"], f"op {r['arp_op']}")
        return f"arp {op} {r['arp_tpa']} from {r['arp_spa']} ({r['eth_src']} -> {r['eth_dst']}){vlan}"
    if h.get("eth_type") != ETH_IP:
        return f"ethertype {h.get('eth_type', 0):#06x} {r['eth_src']} -> {r['eth_dst']}{vlan}"
    proto = PROTO_NAME.get(r["ip_proto"], f"ip proto {r['ip_proto']}")
    frag = {0: "", 1: " (first fragment)", 3: " (later fragment)"}.get(r.get("ip_frag", 0), "")
    if "tp_src" in r:
        flags = ""
        if r["ip_proto"] == 6:
            names = "FSRPAUEC"
            flags = " [" + "".join(n for i, n in enumerate(names) if r["tcp_flags"] >> i & 1) + "]"
        return f"{proto} {r['ipv4_src']}:{r['tp_src']} -> {r['ipv4_dst']}:{r['tp_dst']}{flags}{frag}{vlan}"
    if "icmpv4_type" in r:
        return f"icmp type {r['icmpv4_type']} code {r['icmpv4_code']} {r['ipv4_src']} -> {r['ipv4_dst']}{vlan}"
    return f"{proto} {r['ipv4_src']} -> {r['ipv4_dst']}{frag}{vlan}"


BROADCAST = "ff:ff:ff:ff:ff:ff"


def _prefer(hosts_at: dict[Port, list[dict]], src: Port, dst: Port) -> dict:
    """Field values that make a counterexample read like real traffic between these ports' hosts."""
    pref: dict = {"eth_type": ETH_IP, "vlan_vid": 0, "ip_frag": 0, "ip_dscp": 0, "tcp_flags": 0x002,
                  "ip_proto": 6}
    a = (hosts_at.get(src) or [{}])[0]
    b = (hosts_at.get(dst) or [{}])[0]
    for k, v in (("eth_src", a.get("mac")), ("ipv4_src", a.get("ip")), ("eth_dst", b.get("mac")),
                 ("ipv4_dst", b.get("ip"))):
        if v:
            pref[k] = v
    # a frame not addressed to the host's MAC reads best as a broadcast (an ARP request), not 00:00:00:00:00:00
    pref["eth_dst"] = [*([pref["eth_dst"]] if "eth_dst" in pref else []), BROADCAST]
    pref["tp_src"] = 40000
    return pref


def _names(hosts_at: dict[Port, list[dict]], port: Port) -> str:
    if port == CONTROLLER_PORT:
        return "(controller: packet-in)"
    hs = hosts_at.get(port)
    return "/".join(h["name"] for h in hs) if hs else f"(port {port[1]} of {port[0]})"


def _opener(s: Space, sol: Solution, header: dict[str, int]) -> dict | None:
    """A committing packet whose connection the header belongs to (either direction), or None."""
    key = s.match({k: header[k] for k in KEY})
    rkey = s.rename(key, SWAP)
    for c in sol.commits:
        for k in (key, rkey):
            w = c.headers & s.forget(k, *[f for f in HEADER if f not in KEY])
            if w != s.false:
                return {"port": c.src, "header": s.pick(w, {"tcp_flags": 0x002, "ip_frag": 0, "vlan_vid": 0,
                                                               "ip_dscp": 0, "tp_src": 40000})}
    return None


def compare(s: Space, sol: Solution, exp: dict[tuple[Port, Port], object], hosts: dict[str, dict]) -> Comparison:
    hosts_at: dict[Port, list[dict]] = {}
    for name, rec in sorted(hosts.items()):
        hosts_at.setdefault((str(rec["dpid"]), int(rec["port"])), []).append({"name": name, **rec})
    out = Comparison(pairs=len(sol.sources) * max(0, len(sol.sources) - 1))
    keys = {(a, b) for a, row in sol.reach.items() for b in row} | set(exp)
    for a, b in sorted(keys, key=str):
        if a == b:
            continue
        got = sol.reach.get(a, {}).get(b, s.false)
        want = exp.get((a, b), s.false)
        if got != s.false or want != s.false:
            out.pairs_with_traffic += 1
        for kind, diff in (("leak", got & ~want), ("false-block", want & ~got)):
            if diff == s.false:
                continue
            h = s.pick(diff, _prefer(hosts_at, a, b))
            f = Finding(kind, a, b, _names(hosts_at, a), _names(hosts_at, b), h, s.count(diff))
            if kind == "leak":
                first = sol.first.get(a, {}).get(b, s.false)
                if first & s.match({k: h[k] for k in HEADER}) == s.false:
                    op = _opener(s, sol, h)
                    if op is not None:
                        op["host"] = _names(hosts_at, op["port"])
                    f.opener = op
            out.findings.append(f)
    return out
