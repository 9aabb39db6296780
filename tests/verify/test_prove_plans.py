"""The proof on compiled plans (no switch): clean on the real pipeline, and it catches what the
negative controls break — the stateless and allow-all apps leak, a deleted grant is a false block,
a foreign rule is a leak — each with a concrete header that says why."""
from __future__ import annotations

import copy

import pytest

from testbed.openflow.forwarding import forwarding_plan
from testbed.slicing.flows import stateless_rules, wiring_from_plan
from testbed.verify.compare import describe
from testbed.verify.prove import prove
from tests.slicing.fakenet import DOC, EMR, KIOSK, PACS, Net


def _pairs(proof, kind: str) -> set[tuple[str, str]]:
    return {(f.src, f.dst) for f in proof.comparison.findings if f.kind == kind}


@pytest.fixture(scope="module")
def plan(minimal) -> dict:
    return Net(minimal).plan


def test_the_stateful_plan_is_verified_clean(plan):
    p = prove(plan, plan["switches"])
    s = p.summary()
    assert (s["leaks"], s["false_blocks"]) == (0, 0), [f.as_dict() for f in p.comparison.findings]
    n = len(plan["hosts"])
    assert s["pairs"] == n * (n - 1) and s["pairs_with_traffic"] > 0
    assert s["rounds"] == 2  # the connections the first round commits make the second round's replies


def test_the_stateless_app_leaks_replies_to_nothing(plan):
    rules = stateless_rules(plan)["switches"]
    p = prove(plan, rules)
    leaks = p.comparison.leaks
    assert leaks  # (it also blocks what the tracker would pass: fragments, ICMP errors)
    # the provider answers from its service port to any port of the member, no connection needed
    emr_to_doc = [f for f in leaks if (f.src, f.dst) == (EMR, DOC)]
    assert emr_to_doc, _pairs(p, "leak")
    h = emr_to_doc[0].header
    assert h["ip_proto"] == 6 and h["tp_src"] == 443 and emr_to_doc[0].opener is None
    assert "10.77.0" in describe(h)


def test_the_allow_all_app_leaks_everywhere(plan):
    rules = forwarding_plan(wiring_from_plan(plan))
    p = prove(plan, rules)
    leaks = _pairs(p, "leak")
    assert (KIOSK, PACS) in leaks and (PACS, KIOSK) in leaks  # a slice that grants nothing between them
    assert len(leaks) >= len(plan["hosts"]) * (len(plan["hosts"]) - 1) // 2


def test_a_deleted_grant_is_exactly_its_false_block(plan):
    rules = copy.deepcopy(plan["switches"])
    gone = []
    for dp, rs in rules.items():
        for r in rs:
            m = r["match"]
            if r["table"] == 1 and m.get("tcp_dst") == 443 and m.get("ipv4_src") == plan["hosts"][DOC]["ip"]:
                gone.append(r)
        rules[dp] = [r for r in rs if r not in gone]
    assert len(gone) == 1
    p = prove(plan, rules)
    assert not p.comparison.leaks
    fb = [f for f in p.comparison.false_blocks if (f.src, f.dst) == (DOC, EMR)]
    assert fb and fb[0].header["tp_dst"] == 443 and fb[0].header["tcp_flags"] & 0x02
    # and nothing else but that grant's own replies
    assert _pairs(p, "false-block") <= {(DOC, EMR), (EMR, DOC)}


def test_a_foreign_rule_that_skips_admission_is_a_leak(plan):
    rules = copy.deepcopy(plan["switches"])
    kiosk = plan["hosts"][KIOSK]
    rules[kiosk["dpid"]].append({"table": 0, "priority": 60000, "match": {"in_port": kiosk["port"]},
                                 "actions": [], "goto": 3, "cookie": 0, "note": "foreign"})
    p = prove(plan, rules)
    leaks = {f.dst for f in p.comparison.leaks if f.src == KIOSK}
    assert PACS in leaks and EMR in leaks
    assert all(f.src == KIOSK for f in p.comparison.leaks)
