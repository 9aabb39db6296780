"""The 5G path of a built testbed, checked with captures: UE -> uesimtun -> gNB -> GTP-U -> UPF -> server.

One small alliance: a data centre (EMR, PACS, the central UPF, the core the
plan adds), an aggregation switch (the backhaul's far end) holding a MEC UPF and
an MEC imaging cache, and two clinics each with a gNB and a tablet (one also a
kiosk). The plan binds the imaging slice to the MEC UPF (local breakout: its
service sits beside it) and everything else to the central one.

tcpdump captures on N3 and on the backhaul, read back with tshark's GTP
dissector, show that each session's tunnel ends at its planned UPF with its
planned TEID, QFI and outer DSCP, that the imaging slice's traffic to the MEC
cache never crosses the backhaul, and that the prober's GTP-U attacks and a
rogue UE with an unknown SUPI are refused. A second module (test_ran_negative.py) runs the same attacks against a
UPF that checks nothing and sees them leak.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import built

TOPO = """
name: ran-path
defaults:
  addressing: {pool: 10.77.0.0/24}
sites:
  - {name: dc, type: datacentre}
  - {name: clinic-1, type: clinic}
  - {name: clinic-2, type: clinic}
nodes:
  - {name: dc-sw, kind: switch, site: dc}
  - {name: emr, kind: server, site: dc, services: [emr]}
  - {name: pacs, kind: server, site: dc, services: [pacs]}
  - {name: upf-c, kind: upf, site: dc}
  - {name: agg, kind: switch}
  - {name: upf-mec, kind: upf}
  - {name: mec-01, kind: mec, runtime: namespace, services: [mec-cache]}
  - {name: c1-sw, kind: switch, site: clinic-1}
  - {name: gnb-1, kind: gnb, site: clinic-1}
  - {name: tablet-1, kind: ue, site: clinic-1}
  - {name: kiosk-1, kind: ue, site: clinic-1}
  - {name: c2-sw, kind: switch, site: clinic-2}
  - {name: gnb-2, kind: gnb, site: clinic-2}
  - {name: tablet-2, kind: ue, site: clinic-2}
links:
  - {endpoints: [emr, dc-sw]}
  - {endpoints: [pacs, dc-sw]}
  - {endpoints: [upf-c, dc-sw]}
  - {endpoints: [agg, dc-sw]}
  - {endpoints: [upf-mec, agg]}
  - {endpoints: [mec-01, agg]}
  - {endpoints: [c1-sw, agg]}
  - {endpoints: [gnb-1, c1-sw]}
  - {endpoints: [tablet-1, c1-sw]}
  - {endpoints: [kiosk-1, c1-sw]}
  - {endpoints: [c2-sw, agg]}
  - {endpoints: [gnb-2, c2-sw]}
  - {endpoints: [tablet-2, c2-sw]}
slices:
  - {name: clinical, sst: 1, sd: "000001", fiveqi: 7, members: [tablet-1, tablet-2], services: [emr, pacs]}
  - {name: imaging, sst: 1, sd: "000002", fiveqi: 8, members: [tablet-1, tablet-2], services: [mec-cache]}
  - {name: kiosk, sst: 3, sd: "000003", fiveqi: 9, members: [kiosk-1], services: [emr]}
"""

needs_tools = pytest.mark.skipif(not (shutil.which("tcpdump") and shutil.which("tshark")),
                                 reason="tcpdump and tshark are needed (make setup installs them)")


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    yield from built(TOPO, "ran-path.yaml", tmp_path_factory)


def _ip(tb, node: str) -> str:
    return str(tb.layout.ips[node].ip)


def _session(tb, ue: str, slice_name: str):
    return next(s for s in tb.ran.sessions if s.ue == ue and s.slice == slice_name)


def _iface(tb, node: str) -> str:
    return next(ln.intf_a if ln.a == node else ln.intf_b for ln in tb.layout.links if node in (ln.a, ln.b))


def _root_iface(tb, a: str, b: str) -> str:
    """The root-namespace interface (switch port) of link a-b on a's side."""
    ln = next(ln for ln in tb.layout.links if {ln.a, ln.b} == {a, b})
    return ln.intf_a if ln.a == a else ln.intf_b


class Capture:
    """tcpdump in a node (or the root namespace: node None) for the duration of a `with` block."""

    def __init__(self, tb, node: str | None, iface: str, path: Path, bpf: str = ""):
        argv = ["tcpdump", "-Z", "root", "--immediate-mode", "-U", "-n", "-i", iface, "-w", str(path), *bpf.split()]
        self.proc = (tb.node(node).popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if node
                     else subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.path = path

    def __enter__(self) -> "Capture":
        time.sleep(1.0)  # tcpdump has the interface open
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.5)
        self.proc.terminate()
        self.proc.wait(10)


def tshark(path: Path, *fields: str, where: str = "") -> list[list[str]]:
    argv = ["tshark", "-r", str(path), "-T", "fields", *[x for f in fields for x in ("-e", f)]]
    out = subprocess.run(argv + (["-Y", where] if where else []), capture_output=True, text=True, timeout=60)
    return [line.split("\t") for line in out.stdout.splitlines() if line.strip()]


def test_every_ue_registers_and_each_session_is_a_uesimtun_with_its_address(tb):
    assert tb.ran is not None and {n.kind for n in tb.topo.nodes} >= {"core", "upf", "gnb", "ue"}
    for sub in tb.ran.subscribers:
        addrs = tb.node(sub.name).run(["ip", "-br", "addr"]).stdout
        for s in sub.sessions:
            assert any(line.split()[0] == s.tun and f"{s.address}/32" in line for line in addrs.splitlines()), addrs


def test_the_plan_binds_imaging_to_the_mec_upf_and_the_rest_to_the_central_one(tb):
    for s in tb.ran.sessions:
        assert s.upf == ("upf-mec" if s.slice == "imaging" else "upf-c"), s


def test_a_ue_reaches_its_services_only_through_its_sessions(tb):
    ue = tb.node("tablet-1")
    route = ue.run(["ip", "route", "get", _ip(tb, "emr")]).stdout
    assert "dev uesimtun0" in route and str(_session(tb, "tablet-1", "clinical").address) in route
    route = ue.run(["ip", "route", "get", _ip(tb, "mec-01")]).stdout
    assert "dev uesimtun1" in route
    # the UE's own address is its radio link only: sent from it, a packet to the EMR is dropped
    own = ue.run(["ping", "-c", "2", "-W", "1", "-I", _iface(tb, "tablet-1"), _ip(tb, "emr")])
    assert " 0 received" in own.stdout, own.stdout


@needs_tools
def test_n3_carries_gtpu_to_the_planned_upf_with_teid_qfi_and_dscp(tb, tmp_path):
    emr = _session(tb, "tablet-1", "clinical")
    pcap = tmp_path / "n3-central.pcap"
    with Capture(tb, "upf-c", _iface(tb, "upf-c"), pcap, "udp port 2152"):
        r = tb.node("tablet-1").run(["ping", "-c", "3", "-i", "0.2", _ip(tb, "emr")])
        assert " 0% packet loss" in r.stdout, r.stdout
    rows = tshark(pcap, "ip.src", "ip.dst", "gtp.teid", "gtp.ext_hdr.pdu_ses_con.qos_flow_id", "ip.dsfield.dscp",
                  where="gtp.message == 0xff")
    up = [r for r in rows if r[0].startswith(_ip(tb, "gnb-1"))]
    down = [r for r in rows if r[0].startswith(_ip(tb, "upf-c"))]
    assert up and down, rows
    for r in up:  # outer gNB -> UPF, inner session address -> EMR (tshark lists both IP layers)
        assert r[1].split(",")[0] == _ip(tb, "upf-c")
        assert int(r[2], 16 if r[2].startswith("0x") else 10) == emr.ul_teid
        assert r[3] == "1" and r[4].split(",")[0] == str(emr.dscp)
        assert r[0].split(",")[1] == str(emr.address) and r[1].split(",")[1] == _ip(tb, "emr")
    for r in down:
        assert int(r[2], 16 if r[2].startswith("0x") else 10) == emr.dl_teid


@needs_tools
def test_mec_traffic_breaks_out_locally_and_never_crosses_the_backhaul(tb, tmp_path):
    img = _session(tb, "tablet-1", "imaging")
    n3, backhaul = tmp_path / "n3-mec.pcap", tmp_path / "backhaul.pcap"
    url = f"http://{_ip(tb, 'mec-01')}:8080/"
    tb.veth("dc-sw:agg")  # a patch link between two switches: made a veth pair, to capture on
    with Capture(tb, "upf-mec", _iface(tb, "upf-mec"), n3, "udp port 2152"), \
            Capture(tb, None, _root_iface(tb, "dc-sw", "agg"), backhaul):
        for _ in range(3):
            r = tb.node("tablet-1").run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", url])
            assert r.stdout in ("200", "404"), r
        central = tb.node("tablet-1").run(["ping", "-c", "2", "-i", "0.2", _ip(tb, "emr")])
        assert " 0% packet loss" in central.stdout
    teids = {int(x[0], 0) for x in tshark(n3, "gtp.teid", where="gtp.message == 0xff")}
    assert img.ul_teid in teids, teids
    seen = tshark(backhaul, "ip.src", "ip.dst")
    addrs = {a for row in seen for cell in row for a in cell.split(",")}
    assert _ip(tb, "mec-01") not in addrs and str(img.address) not in addrs
    # ...while the central slice's tunnel does cross it (the capture is not blind)
    assert _ip(tb, "upf-c") in addrs, addrs


def test_servers_route_the_session_pools_back_through_their_upf(tb):
    routes = tb.node("emr").run(["ip", "route"]).stdout
    clinical = _session(tb, "tablet-1", "clinical")
    assert f"{clinical.pool} via {_ip(tb, 'upf-c')}" in routes, routes


def test_the_prober_finds_no_leak_and_refuses_every_gtpu_attack(tb):
    from testbed.probe.run import run_probes

    results = run_probes(tb, scripts=False)
    failed = [(c.kind, c.name, c.detail) for c in results if c.failed]
    assert not failed, failed[:10]
    kinds = {c.kind for c in results}
    assert {"attack:gtpu-teid", "attack:gtpu-non-gnb", "attack:spoof-inner", "attack:rogue-ue", "attack:ue-to-ue",
            "attack:ue-to-upf"} <= kinds
    rogue = next(c for c in results if c.kind == "attack:rogue-ue")
    assert rogue.metrics["state"] == "rejected" and rogue.metrics["core_rejects"][0]["cause"] == 7, rogue.metrics
    # the UPF saw and dropped them, each under its reason
    drops = tb.node("upf-c").run(["cat", str(tb.manifest.dir / "ran" / "upf-c.status.json")]).stdout
    for reason in ("unknown-teid", "wrong-gnb", "spoofed-source", "to-session", "to-upf"):
        assert f'"{reason}"' in drops, drops
    # the should-pass rows of a UE arrived from its session address
    row = next(c for c in results if c.kind == "isolation" and c.name.startswith("tablet-1 -> emr emr"))
    assert row.status == "pass"
