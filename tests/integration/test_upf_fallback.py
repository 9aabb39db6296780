"""A lost MEC UPF on a real testbed: the core sees its PFCP heartbeats go unanswered and moves its sessions
to the central UPF, the switches and servers follow, the UEs' flows are back before the MEC UPF is, the
sessions go home when it answers again, and isolation holds afterwards."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers import MINIMAL, built, cli

LOST_S = 8


def _topology() -> str:
    """minimal.yaml with a central UPF in the data centre and a MEC UPF at the clinic (which then serves
    the clinic's sessions, the central one being their fallback), and a drill that loses the MEC UPF."""
    text = MINIMAL.read_text()
    for old, new in (
        ("  - {name: clinic-sw, kind: switch, site: clinic-1}\n",
         "  - {name: clinic-sw, kind: switch, site: clinic-1}\n  - {name: upf-01, kind: upf, site: xch-dc}\n"
         "  - {name: upf-mec, kind: upf, site: clinic-1}\n"),
        ("  - {endpoints: [gnb-clinic, clinic-sw]}\n",
         "  - {endpoints: [gnb-clinic, clinic-sw]}\n  - {endpoints: [upf-01, core]}\n"
         "  - {endpoints: [upf-mec, clinic-sw]}\n"),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.replace("\nworkloads:", f"\nfaults:\n  - {{name: mec-upf-lost, type: node-down, target: upf-mec, "
                                        f"at: 0s, duration: {LOST_S}s}}\nworkloads:", 1)


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    yield from built(_topology(), "mec-fallback.yaml", tmp_path_factory, on_disk=True)


def test_a_lost_mec_upfs_sessions_fall_back_to_the_central_upf_and_come_home(tb):
    from testbed.checks.faults import run_drills
    from testbed.engine.ran import read_status, status_path
    from testbed.probe.run import run_probes

    tablet = tb.ran.subscriber("dr-tablet-01").sessions[0]
    assert (tablet.upf, tablet.fallback_upf) == ("upf-mec", "upf-01")
    central_before = read_status(status_path(tb, "upf-01")).get("counters", {})
    [r] = [x for x in run_drills(tb) if x.kind == "fault"]
    assert r.status == "pass", r.detail
    m = r.metrics["upf_fallback"]
    rows = {row["session"]: row for row in m["sessions"]}
    assert set(rows) == {"dr-tablet-01/uesimtun0", "kiosk-01/uesimtun0"}, rows
    for row in rows.values():
        assert row["fallback"] == "upf-01" and row["now_on"] == "upf-mec", row  # moved, then home again
        assert 1.0 <= row["upf_lost_s"] < 3.0, row  # the heartbeats: lost after 1.5 s of silence
        assert row["upf_lost_s"] <= row["moved_s"] <= row["network_followed_s"] < LOST_S, row
        assert row["gnb_confirmed_s"] is not None and row["moved_home_s"] >= LOST_S, row
    flows = [f for f in r.metrics["affected"] if f["src"] == "dr-tablet-01"]
    assert flows and all(f["back_s"] < LOST_S for f in flows), flows  # back while the MEC UPF is down
    assert m["flows_back_s_max"] < LOST_S
    # the central UPF took both sessions over N4 and let go of them once they were home
    central = read_status(status_path(tb, "upf-01"))["counters"]
    for key in ("sessions_established", "sessions_deleted"):
        assert central.get(key, 0) - central_before.get(key, 0) == 2, (key, central)
    print(r.detail)
    core = read_status(status_path(tb, tb.ran.core.name))
    assert core["n4"]["heartbeats"]["upfs"] == {"upf-01": "alive", "upf-mec": "alive"}
    plan = (tb.manifest.dir / "slice-changes.json").read_text()
    assert '"upf": {}' in plan.replace("\n", "").replace(" ", "").replace('"upf":{}', '"upf": {}'), plan
    results = run_probes(tb, scripts=False)
    failed = [(c.kind, c.name, c.detail) for c in results if c.failed]
    assert not failed, failed[:5]


def test_testbed_fault_inject_on_a_mec_upf_falls_back_and_comes_home(tb):
    """The CLI verb on the running testbed: the same fallback, followed by the switches and servers."""
    emr = str(tb.layout.ips["emr"].ip)
    ping = tb.node("dr-tablet-01").popen(["ping", "-n", "-q", "-c", "70", "-i", "0.1", "-W", "1", emr],
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    r = cli("fault", "inject", "node-down", "upf-mec", "--for", "5s", "--run", tb.run_id, timeout=120)
    out = ping.communicate(timeout=60)[0]
    assert "2 session(s) to the fallback UPF" in r.stdout and "2 session(s) home" in r.stdout, r.stdout
    received = int(re.search(r"(\d+) received", out).group(1))
    # 5 s of the 7 s of pings had no MEC UPF: without the fallback at most ~25 echoes could come back
    assert received >= 40, out
