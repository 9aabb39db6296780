"""Evasion rows (testbed.probe.evasions): the other direction of every grant and the tricks
that pass a stateless filter, planned from the policy. Pure: no root, nothing built."""
from __future__ import annotations

from collections import defaultdict

import pytest

from traffic import packets as P

from testbed.openflow.layout import make_layout
from testbed.probe.attacks import Hosts
from testbed.probe.evasions import (ATTACKER_PORT_BASE, IDLE_PORT_BASE, KINDS, counts, plan_evasions)
from testbed.probe.matrix import build_matrix
from testbed.slicing.policy import compile_policy

LINUX_EPHEMERAL = range(32768, 61000)  # net.ipv4.ip_local_port_range's default
MATRIX_CRAFTED = range(20000, 60000)  # source ports of the matrix's crafted frames (run._crafted)


def _plan(topo):
    pol = compile_policy(topo)
    lay = make_layout(topo, "0000")
    h = Hosts({n: str(i.ip) for n, i in lay.ips.items()}, dict(lay.macs))
    rows = build_matrix(topo, pol)
    return pol, h, rows, plan_evasions(pol, h, rows)


@pytest.fixture(scope="module")
def minimal_plan(minimal):
    return _plan(minimal)


@pytest.fixture(scope="module")
def reference_plan(reference):
    return _plan(reference)


def _frames(plan):
    for a in plan:
        for f in a.frames:
            yield a, f, P.parse(f)


def test_every_kind_is_planned_and_every_row_is_a_must_fail_at_its_target(minimal_plan):
    pol, h, _rows, plan = minimal_plan
    assert {a.kind for a in plan} == set(KINDS)
    assert all(c["rows"] for c in counts(plan).values())
    for a in plan:
        assert len(a.forbidden_at) == 1 and a.forbidden_at[0] != a.src
        assert a.frames, a.name
        ends = {a.src, a.forbidden_at[0]}
        # one end is a provider, the other a member it serves: both ends of a grant
        assert any({g.src, g.dst} == ends for g in pol.grants), a.name


def test_frames_carry_both_ends_real_addresses_and_the_rows_token(minimal_plan):
    _pol, h, _rows, plan = minimal_plan
    for a, f, s in _frames(plan):
        dst = a.forbidden_at[0]
        assert (s["eth_src"], s["eth_dst"]) == (h.mac[a.src], h.mac[dst]), a.name
        assert (s["ip_src"], s["ip_dst"]) == (h.ip[a.src], h.ip[dst]), a.name
        assert s["vlans"] == [] and s["token"] == a.id, a.name


def test_no_frame_is_a_flow_the_policy_grants(reference_plan):
    pol, _h, _rows, plan = reference_plan
    for a, _f, s in _frames(plan):
        if "dport" in s and "frag" not in s:
            proto = {6: "tcp", 17: "udp"}[s["proto"]]
            assert not pol.allowed(a.src, a.forbidden_at[0], proto, s["dport"]), a.name


def test_ids_are_unique_and_never_a_matrix_attack_or_twin_id(reference_plan):
    _pol, _h, rows, plan = reference_plan
    ids = [a.id for a in plan]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("v") and len(i) == 8 for i in ids)
    assert not set(ids) & {r.id for r in rows}


def test_no_probe_can_be_part_of_a_real_or_probed_connection(reference_plan):
    """Member-side ports are well known or above the ephemeral and crafted ranges; the provider's
    are its service ports or the attacker's own; echo replies use no ident the matrix pings use."""
    pol, _h, rows, plan = reference_plan
    svc_ports = {g.port for g in pol.grants}
    used_idents = defaultdict(set)
    for r in rows:
        if r.proto == "icmp":
            n = int(r.id, 16)
            used_idents[(r.src, r.dst)] |= {n & 0xFFFF, (n + 0x8000) & 0xFFFF}
    for a, _f, s in _frames(plan):
        if "sport" not in s:
            if s.get("icmp_type") == 0:
                assert s["icmp_id"] not in used_idents[(a.forbidden_at[0], a.src)], a.name
            continue
        for port in (s["sport"], s["dport"]):
            if port >= 10000:
                assert port not in LINUX_EPHEMERAL and port not in MATRIX_CRAFTED, (a.name, port)
        if s["sport"] >= 10000:
            assert s["sport"] >= min(IDLE_PORT_BASE, ATTACKER_PORT_BASE), a.name
        else:
            assert s["sport"] in svc_ports, a.name


def test_reference_volume_is_bounded_and_covers_every_pair(reference_plan):
    """Every (provider, member) pair gets the headline rows; every (provider, slice) pair every kind."""
    pol, _h, _rows, plan = reference_plan
    c = counts(plan)
    assert sum(k["rows"] for k in c.values()) < 1500 and sum(k["frames"] for k in c.values()) < 2000, c
    pairs = {(g.dst, g.src) for g in pol.grants}
    got = defaultdict(set)
    for a in plan:
        got[(a.src, a.forbidden_at[0])].add(a.kind)
        got[(a.forbidden_at[0], a.src)].add(a.kind)  # member -> provider rows count for the pair too
    for p, m in pairs:
        assert {"source-port", "reverse-syn"} <= got[(p, m)], (p, m)
    by_slice = defaultdict(set)
    for g in pol.grants:
        by_slice[(g.dst, g.slice)].add(g.src)
    for (p, sl), members in by_slice.items():
        assert any(got[(p, m)] == set(KINDS) for m in members), (p, sl)


def test_what_a_stateless_reply_rule_would_admit_is_planned(minimal_plan):
    """The rows a `tp_src = service port` reply rule lets through exist for every kind it concerns:
    the negative control (tests/probe/test_evasions_integration.py) leaks in exactly those."""
    pol, h, _rows, plan = minimal_plan
    svc = {(g.dst, g.src, g.proto, g.port) for g in pol.grants}
    hole = defaultdict(int)
    for a, _f, s in _frames(plan):
        if "sport" in s and "frag" not in s:
            proto = {6: "tcp", 17: "udp"}[s["proto"]]
            if (a.src, a.forbidden_at[0], proto, s["sport"]) in svc:
                hole[a.kind] += 1
    assert hole["source-port"] and hole["tcp-flags"] and hole["unsolicited-reply"]
    assert not hole["reverse-syn"] and not hole["fragment"]


def test_fragment_rows_are_fragments(minimal_plan):
    _pol, _h, _rows, plan = minimal_plan
    for a in plan:
        if a.kind == "fragment":
            parts = [P.parse(f) for f in a.frames]
            assert all("frag" in s for s in parts), a.name
            assert len({s["ip_id"] for s in parts}) == 1, a.name
            if "alone" in a.name:
                assert len(parts) == 1 and parts[0]["frag"] > 0 and "dport" not in parts[0]
            else:
                assert parts[0]["frag"] == 0 and parts[0]["mf"] and parts[-1]["frag"] > 0, a.name
