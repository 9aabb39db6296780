"""Desktop failover over the 5G path (minimal.yaml plus a desktop pool): the tablet's session leaves
through its PDU session's TUN, GTP-U and the UPF, and on the spare host's loss comes back the same way."""
from __future__ import annotations

import pytest

from tests.helpers import MINIMAL, built

POOL = """
  - {name: vdi-01, kind: vdi, site: xch-dc, services: [vdi]}
  - {name: vdi-02, kind: vdi, site: xch-dc, services: [vdi], spare: true}
links:
  - {endpoints: [vdi-01, core]}
  - {endpoints: [vdi-02, core]}
"""
DRILL = """
  - {name: tablet-desktop, type: vdi, from: [dr-tablet-01], to: vdi, slice: clinical, duration: 3s,
     slo: {latency_p95: 100ms}}
faults:
  - {name: desktop-host-lost, type: node-down, target: vdi-01, at: 1s, duration: 5s, desktop: cloud}
"""


def topology() -> str:
    text = MINIMAL.read_text().replace("\nlinks:\n", POOL, 1).replace("services: [emr, pacs]", "services: [emr, pacs, vdi]")
    return text.rstrip() + "\n" + DRILL


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    yield from built(topology(), "minimal-desktops.yaml", tmp_path_factory)


def test_the_ues_desktop_session_fails_over_through_its_pdu_session(tb):
    from testbed.checks.faults import run_drills

    assert tb.ran is not None  # the 5G path is up: the session leaves through uesimtun0
    results = {r.kind: r for r in run_drills(tb)}
    r = results["fault"]
    assert r.status == "pass", r.detail
    [s] = r.metrics["desktop"]["sessions"]
    assert s["src"] == "dr-tablet-01" and s["moved_to"] == "vdi-02" and s["slo_back_s"] <= 5.0, s
    t1 = results["table1"]
    assert set(t1.metrics["arms"]) == {"cloud"} and "arm(s) not drilled: traditional" in t1.detail
    assert t1.status == "pass" and t1.metrics["arms"]["cloud"]["recovery_s"] == s["slo_back_s"]
