"""Counterexamples read like real traffic: a preferred value may have alternatives (verify.headers.Space.pick).

A tester's `verify` against the deliberately broken allow-all app showed false blocks as ARP requests sent to
00:00:00:00:00:00, a frame no ARP stack sends: the frame not being addressed to the host, the MAC fell to zero."""
from __future__ import annotations

from testbed.verify.compare import BROADCAST
from testbed.verify.headers import Space, from_int

HOST_MAC = "02:00:00:00:00:02"


def test_an_arp_frame_not_for_the_host_reads_as_a_broadcast_request():
    s = Space()
    u = s.field("eth_type", 0x0806) & ~s.field("eth_dst", HOST_MAC)
    h = s.pick(u, {"eth_type": 0x0800, "eth_dst": [HOST_MAC, BROADCAST]})
    assert h["eth_type"] == 0x0806 and from_int("eth_dst", h["eth_dst"]) == BROADCAST


def test_the_first_alternative_wins_when_it_fits_and_a_plain_value_still_works():
    s = Space()
    u = s.field("eth_type", 0x0800)
    h = s.pick(u, {"eth_dst": [HOST_MAC, BROADCAST], "ipv4_dst": "10.0.0.9"})
    assert from_int("eth_dst", h["eth_dst"]) == HOST_MAC and from_int("ipv4_dst", h["ipv4_dst"]) == "10.0.0.9"
