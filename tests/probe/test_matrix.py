"""The isolation matrix and the attack plan, from the policy (no root)."""
from __future__ import annotations

from collections import Counter

from testbed.openflow.layout import make_layout
from testbed.probe.attacks import Hosts, plan_attacks
from testbed.probe.matrix import build_matrix, summary
from testbed.slicing.policy import compile_policy


# topologies/minimal.yaml, worked out by hand from the file (not from build_matrix):
# hosts emr (emr tcp/443), pacs (pacs tcp/104), gnb-clinic (rls udp/4997 and gtpu udp/2152, which
# a gNB always offers), dr-tablet-01, kiosk-01;
# slice clinical = {dr-tablet-01} -> emr, pacs; slice kiosk = {kiosk-01} -> emr.
HOSTS = ("emr", "pacs", "gnb-clinic", "dr-tablet-01", "kiosk-01")
GRANTED = {("dr-tablet-01", "emr", "tcp", 443), ("dr-tablet-01", "pacs", "tcp", 104), ("kiosk-01", "emr", "tcp", 443)}
# service rows: every other host x each service a host offers (4 sources each for emr and pacs)
SERVICE_ROWS = {
    ("pacs", "emr", "tcp", 443): "fail",
    ("gnb-clinic", "emr", "tcp", 443): "fail",
    ("dr-tablet-01", "emr", "tcp", 443): "pass",
    ("kiosk-01", "emr", "tcp", 443): "pass",
    ("emr", "pacs", "tcp", 104): "fail",
    ("gnb-clinic", "pacs", "tcp", 104): "fail",
    ("dr-tablet-01", "pacs", "tcp", 104): "pass",
    ("kiosk-01", "pacs", "tcp", 104): "fail",  # the other slice's service
    # the file's policy alone grants no radio link or GTP-U (the 5G run adds them: tests/ran)
    **{(src, "gnb-clinic", "udp", port): "fail" for src in ("emr", "pacs", "dr-tablet-01", "kiosk-01")
       for port in (4997, 2152)},
}
# icmp rows: all 5 * 4 ordered pairs; only the three granted pairs may ping (one way)
ICMP_PASS = {("dr-tablet-01", "emr"), ("dr-tablet-01", "pacs"), ("kiosk-01", "emr")}
# port rows, per granted pair: tcp/22, tcp/3389, the granted port + 1, the granted port in udp
PORT_ROWS = {
    ("dr-tablet-01", "emr"): {("tcp", 22), ("tcp", 3389), ("tcp", 444), ("udp", 443)},
    ("dr-tablet-01", "pacs"): {("tcp", 22), ("tcp", 3389), ("tcp", 105), ("udp", 104)},
    ("kiosk-01", "emr"): {("tcp", 22), ("tcp", 3389), ("tcp", 444), ("udp", 443)},
}


def test_minimal_matrix_is_exactly_the_hand_written_one(minimal):
    rows = build_matrix(minimal, compile_policy(minimal))
    assert len(rows) == 16 + 20 + 12
    got = {(r.category, r.src, r.dst, r.proto, r.port): r for r in rows}
    assert len(got) == len(rows)  # no row twice

    service = {k[1:]: r.expect for k, r in got.items() if k[0] == "service"}
    assert service == SERVICE_ROWS
    assert {k for k, e in SERVICE_ROWS.items() if e == "pass"} == GRANTED

    icmp = {(k[1], k[2]): r.expect for k, r in got.items() if k[0] == "icmp"}
    assert set(icmp) == {(a, b) for a in HOSTS for b in HOSTS if a != b}
    assert len(icmp) == 20
    assert {pair for pair, e in icmp.items() if e == "pass"} == ICMP_PASS
    assert icmp[("emr", "dr-tablet-01")] == "fail"  # a grant is one-way
    assert icmp[("kiosk-01", "dr-tablet-01")] == "fail"  # host to host across slices

    ports: dict[tuple[str, str], set[tuple[str, int]]] = {}
    for k, r in got.items():
        if k[0] == "port":
            assert r.expect == "fail", k
            ports.setdefault((k[1], k[2]), set()).add((k[3], k[4]))
    assert ports == PORT_ROWS

    assert all(r.port == 0 and r.service == "ping" for r in rows if r.category == "icmp")
    assert got[("service", "kiosk-01", "emr", "tcp", 443)].service == "emr"
    assert got[("port", "kiosk-01", "emr", "udp", 443)].service == "udp/443"
    assert got[("service", "kiosk-01", "emr", "tcp", 443)].why == "granted by kiosk"
    assert got[("service", "dr-tablet-01", "pacs", "tcp", 104)].why == "granted by clinical"
    assert summary(rows) == {"service": {"pass": 3, "fail": 13}, "icmp": {"pass": 3, "fail": 17},
                             "port": {"pass": 0, "fail": 12}}


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
