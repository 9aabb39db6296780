"""Checks on a controller plan before anything is installed: what OVS would refuse, what breaks the pipeline.

Faucet verifies every flow mod against what its table declares; these are the
testbed's equivalent, kept apart from the fake network (`simulate.py`), which
assumes a plan that passed them: OVS rejects a match without its prerequisites
(OFPBMC_BAD_PREREQ), a ct() that does not recirculate loses the packet's state,
and equal-priority rules that overlap make OVS's choice undefined.
"""
from __future__ import annotations

from collections.abc import Iterator

from testbed.slicing import conntrack as ct
from testbed.slicing.simulate import ETH_ARP, ETH_IP

_PREREQ = {  # match field prefix -> (field, value) it needs in the same match (OVS refuses the rule otherwise)
    "ipv4_": ("eth_type", ETH_IP), "ip_proto": ("eth_type", ETH_IP), "ip_dscp": ("eth_type", ETH_IP),
    "ip_frag": ("eth_type", ETH_IP), "tcp_": ("ip_proto", 6), "udp_": ("ip_proto", 17),
    "icmpv4_": ("ip_proto", 1), "arp_": ("eth_type", ETH_ARP),
}


def verify_rule(rule: dict) -> list[str]:
    """What OVS would refuse in one plan rule, or what breaks the pipeline's assumptions."""
    problems = []
    m = rule["match"]
    for k in m:
        for prefix, (need, value) in _PREREQ.items():
            if k.startswith(prefix) and m.get(need) != value:
                problems.append(f"match {k} needs {need}={value:#x}")
    if "tcp_flags" in m and m.get("ip_proto") != 6:
        problems.append("tcp_flags needs ip_proto=6")
    acts = rule.get("actions", [])
    for i, a in enumerate(acts):
        if "set_field" in a:
            for k in a["set_field"]:
                for prefix, (need, value) in _PREREQ.items():
                    if k.startswith(prefix) and m.get(need) != value:
                        problems.append(f"set_field {k} needs {need}={value:#x} in the match")
        if "ct" in a:
            if m.get("eth_type") != ETH_IP:
                problems.append("ct() needs eth_type=0x800 in the match")
            if "table" not in a["ct"]:
                problems.append("ct() must recirculate (table=...): its results must meet a +trk-inv check")
            if i != len(acts) - 1 or rule.get("goto") is not None:
                problems.append("ct(table=...) must be the rule's last action, without goto "
                                "(the packet after it continues without its state)")
    if rule.get("goto") is not None and rule["goto"] <= rule.get("table", 0):
        problems.append("goto must point to a later table")
    return problems


def verify_plan(plan: dict) -> list[str]:
    """verify_rule for every rule, plus: a table a ct() recirculates to admits only +trk-inv packets,
    equal-priority rules of a table never overlap, every meter a rule uses exists on its switch."""
    problems = []
    recirc = {a["ct"]["table"] for rules in plan["switches"].values() for r in rules
              for a in r.get("actions", []) if "ct" in a and "table" in a["ct"]}
    trk_inv = ct.TRK | ct.INV
    for dp, rules in plan["switches"].items():
        meters = {m["meter_id"] for m in plan.get("meters", {}).get(dp, [])}
        by_prio: dict[tuple[int, int], list[dict]] = {}
        for r in rules:
            where = f"{dp} table {r.get('table', 0)} {r.get('note', r['match'])}"
            problems += [f"{where}: {p}" for p in verify_rule(r)]
            if r.get("table", 0) in recirc:
                st = r["match"].get("ct_state")
                if not st or st[1] & trk_inv != trk_inv or st[0] & trk_inv != ct.TRK:
                    problems.append(f"{where}: a rule after ct() must require +trk-inv")
            if r.get("meter") is not None and r["meter"] not in meters:
                problems.append(f"{where}: meter {r['meter']} is not on this switch")
            by_prio.setdefault((r.get("table", 0), r["priority"]), []).append(r)
        for (table, prio), same in by_prio.items():
            for a, b in _candidate_pairs(same):
                if _overlap(a["match"], b["match"]):
                    problems.append(f"{dp} table {table} priority {prio}: {a.get('note')} and {b.get('note')} "
                                    "overlap (which one OVS picks is undefined)")
    return problems


def _candidate_pairs(rules: list[dict]) -> Iterator[tuple[dict, dict]]:
    """Pairs of rules that could overlap: only those with the same value of a field all of them set
    (in_port, eth_dst), so the check stays fast on thousands of rules."""
    key = next((k for k in ("in_port", "eth_dst") if all(k in r["match"] for r in rules)), None)
    groups: dict[object, list[dict]] = {}
    for r in rules:
        groups.setdefault(r["match"][key] if key else None, []).append(r)
    for same in groups.values():
        for i, a in enumerate(same):
            for b in same[i + 1:]:
                yield a, b


def _implied(match: dict) -> dict:
    """A match with L4 fields cannot match a non-first fragment (its flow key has no L4 header)."""
    if any(k.startswith(("tcp_", "udp_", "icmpv4_")) for k in match) and "ip_frag" not in match:
        return {**match, "ip_frag": [0, ct.FRAG_LATER]}
    return match


def _overlap(a: dict, b: dict) -> bool:
    """Could one packet match both? (Fields both set must agree; masked fields on their common bits.)"""
    a, b = _implied(a), _implied(b)
    for k in a.keys() & b.keys():
        va, vb = a[k], b[k]
        if isinstance(va, list) or isinstance(vb, list):
            va = va if isinstance(va, list) else [va, -1]
            vb = vb if isinstance(vb, list) else [vb, -1]
            common = va[1] & vb[1]
            if va[0] & common != vb[0] & common:
                return False
        elif va != vb:
            return False
    return True
