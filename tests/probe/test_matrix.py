"""The isolation matrix and the attack plan, from the policy (no root)."""
from __future__ import annotations

from collections import Counter

from testbed.openflow.layout import make_layout
from testbed.probe.attacks import Hosts, plan_attacks
from testbed.probe.matrix import build_matrix, summary
from testbed.slicing.policy import compile_policy


def _rows(topo):
    return {(r.category, r.src, r.dst, r.proto, r.port): r for r in build_matrix(topo, compile_policy(topo))}


def test_minimal_matrix_is_complete_and_right(minimal):
    rows = _rows(minimal)
    hosts = [n.name for n in minimal.hosts]
    # every ordered pair of hosts has an icmp row; every host x every service of another host a service row
    assert sum(k[0] == "icmp" for k in rows) == len(hosts) * (len(hosts) - 1)
    n_services = sum(len(n.services) for n in minimal.hosts)
    assert sum(k[0] == "service" for k in rows) == sum(n_services - len(minimal.node(h).services) for h in hosts)
    assert rows[("service", "dr-tablet-01", "pacs", "tcp", 104)].expect == "pass"
    assert rows[("service", "kiosk-01", "emr", "tcp", 443)].expect == "pass"
    assert rows[("service", "kiosk-01", "pacs", "tcp", 104)].expect == "fail"  # other slice's service
    assert rows[("service", "gnb-clinic", "emr", "tcp", 443)].expect == "fail"  # not a member
    assert rows[("service", "emr", "pacs", "tcp", 104)].expect == "fail"  # servers are not members
    assert rows[("icmp", "dr-tablet-01", "emr", "icmp", 0)].expect == "pass"
    assert rows[("icmp", "emr", "dr-tablet-01", "icmp", 0)].expect == "fail"  # a grant is one-way
    assert rows[("icmp", "kiosk-01", "dr-tablet-01", "icmp", 0)].expect == "fail"  # host to host across slices
    # forbidden ports on an allowed server
    for proto, port in (("tcp", 22), ("tcp", 3389), ("tcp", 444), ("udp", 443)):
        assert rows[("port", "kiosk-01", "emr", proto, port)].expect == "fail"
    assert summary(list(rows.values()))["port"]["pass"] == 0


def test_ids_are_unique_tokens_and_rows_unique(reference):
    rows = build_matrix(reference, compile_policy(reference))
    assert len({r.id for r in rows}) == len(rows)
    assert len({(r.src, r.dst, r.proto, r.port) for r in rows}) == len(rows)
    hosts = len(reference.hosts)
    s = summary(rows)
    assert s["icmp"]["pass"] + s["icmp"]["fail"] == hosts * (hosts - 1)
    pol = compile_policy(reference)
    assert s["service"]["pass"] == len({(g.src, g.dst, g.proto, g.port) for g in pol.grants})
    assert len(rows) > 10000  # the full matrix, not a sample


def test_expectations_follow_the_policy(reference):
    pol = compile_policy(reference)
    for r in build_matrix(reference, pol):
        if r.category == "service":
            assert (r.expect == "pass") == pol.allowed(r.src, r.dst, r.proto, r.port)
        elif r.category == "icmp":
            assert (r.expect == "pass") == ((r.src, r.dst) in set(pol.pairs()))
        else:
            assert r.expect == "fail" and not pol.allowed(r.src, r.dst, r.proto, r.port)


def test_attack_plan_covers_every_kind(reference):
    lay = make_layout(reference, "zz")
    h = Hosts({n: str(i.ip) for n, i in lay.ips.items()}, dict(lay.macs))
    plan = plan_attacks(reference, compile_policy(reference), h)
    kinds = Counter(a.kind for a in plan)
    assert set(kinds) == {"spoof-ip", "spoof-mac", "arp-poison", "vlan-double-tag", "broadcast", "flood"}
    assert kinds["flood"] == sum(1 for s in reference.slices if s.rate)
    assert len({a.id for a in plan}) == len(plan)
    for a in plan:
        assert a.src not in a.forbidden_at
        assert a.frames and all(len(f) >= 60 for f in a.frames)
        if a.kind != "flood":
            assert a.forbidden_at, a.name
    spoof = next(a for a in plan if a.kind == "spoof-ip" and "kiosk-01" == a.src)
    from traffic.packets import parse

    s = parse(spoof.frames[0])
    assert s["eth_src"] == h.mac["kiosk-01"] and s["ip_src"] != h.ip["kiosk-01"] and s["token"] == spoof.id
