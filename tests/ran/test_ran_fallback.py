"""MEC fallback pieces without a network: PFCP heartbeats (codec, tshark, supervision over loopback), the
NGAP modify that moves a session's uplink, the relocated plan and the servers' route changes."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from ipaddress import IPv4Address

import pytest

from testbed.ran import ngap, pfcp
from testbed.ran.network import enforced_policy, infra_grants, relocated, session_host
from testbed.ran.plan import ran_plan
from tests.ran.conftest import mec_topology


@pytest.fixture(scope="module")
def plan():
    return ran_plan(mec_topology())


def test_heartbeat_round_trip_and_refusals():
    req = pfcp.encode(True, 0x123456, 3_900_000_000)
    assert len(req) == 16 and req[:2] == b"\x20\x01"
    assert pfcp.decode(req) == pfcp.Heartbeat(True, 0x123456, 3_900_000_000)
    assert pfcp.decode(pfcp.encode(False, 7, 1)) == pfcp.Heartbeat(False, 7, 1)
    for bad in (b"", req[:10], b"\x40" + req[1:], b"\x21" + req[1:], req[:1] + b"\x32" + req[2:],
                req + b"\x00", req[:8] + b"\x00\x60\x00\x04"[:4] + b"\x00\x00\x00\x00"[:0]):
        with pytest.raises(pfcp.PfcpError):
            pfcp.decode(bad)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_the_heartbeat_as_pfcp(tmp_path):
    from scapy.all import IP, UDP, Ether, Raw, wrpcap

    pkt = (Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=40000, dport=8805)
           / Raw(pfcp.encode(True, 42, pfcp.ntp_seconds(1_700_000_000))))
    wrpcap(str(tmp_path / "hb.pcap"), [pkt])
    out = subprocess.run(["tshark", "-r", str(tmp_path / "hb.pcap"), "-T", "fields", "-e", "pfcp.msg_type",
                          "-e", "pfcp.seqno", "-e", "pfcp.recovery_time_stamp"], capture_output=True, text=True,
                         timeout=60).stdout.split("\t")
    assert out[0] == "1" and out[1] == "42", out
    assert "2023" in out[2], out  # the Recovery Time Stamp, an NTP time: 2023-11-14


def test_supervisor_declares_a_silent_upf_lost_and_a_returning_one_back():
    changes, log = [], lambda *a, **k: None
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    responder = pfcp.Responder("127.0.0.1", {"127.0.0.1"}, port=port)
    responder.open()
    sup = pfcp.Supervisor("127.0.0.1", {"upf": "127.0.0.1"}, lambda n, alive: changes.append((n, alive)), log,
                          port=port, interval=0.05, misses=3)
    sup.open()

    def rounds(n: int, answer: bool) -> None:
        for _ in range(n):
            sup.tick()
            time.sleep(0.02)
            if answer:
                responder.on_read()
            time.sleep(0.02)
            sup.on_read()
            time.sleep(0.02)

    try:
        rounds(3, True)
        assert sup.alive["upf"] is True and changes == [] and responder.answered >= 3  # first answer: no change
        time.sleep(0.5)  # the core's own loop stalls: nothing was sent meanwhile, so nobody is lost
        rounds(1, True)
        assert changes == [] and sup.alive["upf"] is True
        rounds(8, False)
        assert changes == [("upf", False)] and sup.view()["upfs"] == {"upf": "lost"}
        rounds(2, True)
        assert changes == [("upf", False), ("upf", True)]
        other = pfcp.Responder("127.0.0.1", {"10.9.9.9"}, port=0)  # not one of its SMFs: not answered
        other.sock = responder.sock
        sup.tick()
        time.sleep(0.02)
        other.on_read()
        assert other.refused == 1 and other.answered == 0
    finally:
        sup.close()
        responder.close()


def test_ngap_modify_moves_the_uplink_and_is_answered():
    ul, dl = ngap.Tunnel(IPv4Address("10.77.0.9"), 0x1000_0003), ngap.Tunnel(IPv4Address("10.77.0.5"), 0x2000_0003)
    req = ngap.decode(ngap.modify_request(11, 12, [(2, ul, dl)]))
    assert req.procedure == "PDUSessionResourceModifyRequest" and (req.amf_ue_id, req.ran_ue_id) == (11, 12)
    [item] = req.sessions
    assert (item.psi, item.ul, item.dl) == (2, ul, dl)
    res = ngap.decode(ngap.modify_response(11, 12, [(2, ul)]))
    assert res.procedure == "PDUSessionResourceModifyResponse" and res.sessions[0].ul == ul


def test_a_mec_session_names_its_central_fallback_and_is_granted_there_from_the_start(plan):
    [edge] = [s for s in plan.sessions if s.upf == "upf-edge"]
    assert (edge.ue, edge.slice, edge.fallback_upf) == ("ue-1", "imaging", "upf-central")
    assert all(s.fallback_upf is None for s in plan.sessions if s.upf == "upf-central")
    grants = {(g.src, g.dst, g.service) for g in infra_grants(plan)}
    assert {("gnb-1", "upf-central", "gtpu"), ("upf-central", "gnb-1", "gtpu"),
            (plan.core.name, "upf-edge", "pfcp-hb"), (plan.core.name, "upf-central", "pfcp-hb")} <= grants


def test_relocated_moves_the_session_host_behind_the_fallback_and_keeps_the_grants(plan):
    topo = mec_topology()
    [edge] = [s for s in plan.sessions if s.upf == "upf-edge"]
    host = session_host(edge)
    moved = relocated(plan, {host: "upf-central"})
    [s] = [x for x in moved.sessions if session_host(x) == host]
    assert (s.upf, s.fallback_upf, s.address) == ("upf-central", "upf-edge", edge.address)
    (pol_a, alias_a), (pol_b, alias_b) = enforced_policy(topo, plan), enforced_policy(topo, moved)
    assert alias_a[host] == ("upf-edge", str(edge.address)) and alias_b[host] == ("upf-central", str(edge.address))
    assert set(pol_a.grants) == set(pol_b.grants)  # only where the session sits changed
    assert relocated(plan, {}) is plan
    with pytest.raises(KeyError):
        relocated(plan, {host: "gnb-1"})


def test_route_changes_add_the_new_routes_before_deleting_the_stale_ones(plan):
    from testbed.engine.relocate import route_changes
    from testbed.ran.agents import node_addresses

    topo = mec_topology()
    [edge] = [s for s in plan.sessions if s.upf == "upf-edge"]
    addrs = {k: str(v) for k, v in node_addresses(topo).items()}
    central = str(plan.upf("upf-central").address)
    away = route_changes(topo, plan, {}, {session_host(edge): "upf-central"}, addrs)
    home = route_changes(topo, plan, {session_host(edge): "upf-central"}, {}, addrs)
    assert set(away) == {"cache-1"} == set(home), (away, home)
    cmds = away["cache-1"]
    assert cmds[0] == f"ip route replace {edge.pool} via {central}", cmds  # the pool is whole at the centre now
    assert all(c.startswith("ip route del ") and c.endswith("/32 via " + c.split()[-1]) for c in cmds[1:]), cmds
    assert any(str(edge.address) in c for c in cmds[1:]), cmds
    assert any(c.startswith(f"ip route replace {edge.address}/32 via ") for c in home["cache-1"]), home
    assert home["cache-1"][-1] == f"ip route del {edge.pool} via {central}", home
