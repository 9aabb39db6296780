"""Derived facts of a valid topology: layered link settings, addresses, MACs, members."""
from __future__ import annotations

from ipaddress import IPv4Interface

import pytest

from testbed.topology.loader import load
from testbed.topology.model import Topology
from testbed.topology.resolve import (
    assign_addresses,
    assign_macs,
    expand_members,
    link_params,
    node_settings,
)
from testbed.slicing.policy import targets


def _link(topo: Topology, a: str, b: str):
    (link,) = [ln for ln in topo.links if set(ln.endpoints) == {a, b}]
    return link


def test_uplink_between_sites_uses_remote_site_uplink(minimal: Topology) -> None:
    assert link_params(minimal, _link(minimal, "clinic-sw", "core")).bw == 100_000_000
    assert link_params(minimal, _link(minimal, "dr-tablet-01", "clinic-sw")).bw is None


def test_link_setting_beats_site_and_file_defaults(reference: Topology) -> None:
    p = link_params(reference, _link(reference, "dr-tablet-01", "branch-north-sw"))  # the air interface
    assert (p.bw, p.delay, p.jitter, p.mtu) == (None, 4.0, 1.0, 1500)
    p = link_params(reference, _link(reference, "gnb-branch-north", "branch-north-sw"))  # the shared cell
    assert (p.bw, p.delay, p.mtu) == (300_000_000, None, 1500)
    p = link_params(reference, _link(reference, "agg-city", "dc-edge"))
    assert (p.bw, p.delay, p.mtu) == (1_000_000_000, 1.0, 1500)


def test_site_link_defaults_apply_inside_a_site(write_yaml) -> None:
    topo = load(write_yaml("""\
        name: t
        defaults:
          link: {delay: 1ms, mtu: 1400}
        sites:
          - {name: dc, type: datacentre, link: {bw: 10Gbit}}
        nodes:
          - {name: sw, kind: switch, site: dc}
          - {name: h1, kind: server, site: dc}
        links:
          - {endpoints: [h1, sw], mtu: 9000}
        """))
    p = link_params(topo, topo.links[0])
    assert (p.bw, p.delay, p.mtu) == (10_000_000_000, 1.0, 9000)


def test_uplink_to_siteless_aggregation_uses_site_uplink(reference: Topology) -> None:
    p = link_params(reference, _link(reference, "branch-north-sw", "agg-city"))
    assert (p.bw, p.delay) == (1_000_000_000, 2.0)
    p = link_params(reference, _link(reference, "clinic-01-sw", "agg-city"))
    assert (p.bw, p.delay) == (100_000_000, 5.0)


def test_addresses_keep_explicit_and_skip_taken(write_yaml) -> None:
    topo = load(write_yaml("""\
        name: t
        defaults:
          addressing: {pool: 192.168.5.0/29}
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
          - {name: h2, kind: server, ip: 192.168.5.2}
          - {name: h3, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, sw]}
          - {endpoints: [h3, sw]}
        """))
    assert assign_addresses(topo) == {
        "h1": IPv4Interface("192.168.5.1/29"),
        "h2": IPv4Interface("192.168.5.2/29"),
        "h3": IPv4Interface("192.168.5.3/29"),
    }


def test_reference_addresses_and_macs_unique(reference: Topology) -> None:
    ips, macs = assign_addresses(reference), assign_macs(reference)
    hosts = {n.name for n in reference.hosts}
    assert set(ips) == set(macs) == hosts
    assert len(set(ips.values())) == len(ips)
    assert len(set(macs.values())) == len(macs)
    # locally administered unicast: second-lowest bit of the first octet set, lowest clear
    assert all(int(m.split(":")[0], 16) & 0b11 == 0b10 for m in macs.values())


def test_expand_members_by_name_site_and_kind(reference: Topology) -> None:
    names = {n.name for n in expand_members(reference, ["site:shaoshan"])}
    assert names == {"gnb-shaoshan", "dr-tablet-05", "nurse-cart-05", "ward-term-05"}
    assert all(n.kind == "vdi" for n in expand_members(reference, ["kind:vdi"]))
    both = expand_members(reference, ["emr", "emr", "kind:mec"])
    assert [n.name for n in both] == ["emr", "mec-01"]


def test_service_targets_and_node_settings(reference: Topology) -> None:
    assert [n for n, _ in targets(reference, "payment")] == ["his"]
    assert node_settings(reference, reference.node("emr")).runtime == "namespace"
