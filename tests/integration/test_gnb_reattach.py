"""A lost gNB on a real testbed: its UE with a second gNB at the site re-attaches through it, and its flows
are back before the gNB is; a UE told to use only its own gNB waits for the restore; isolation holds after."""
from __future__ import annotations

import pytest

from tests.helpers import MINIMAL, built


def _topology() -> str:
    """minimal.yaml with a second gNB in the clinic; the kiosk may use only its own (`gnbs: []`)."""
    text = MINIMAL.read_text()
    for old, new in (
        ("  - {name: gnb-clinic, kind: gnb, site: clinic-1}\n",
         "  - {name: gnb-clinic, kind: gnb, site: clinic-1}\n  - {name: gnb-clinic-2, kind: gnb, site: clinic-1}\n"),
        ("  - {endpoints: [gnb-clinic, clinic-sw]}\n",
         "  - {endpoints: [gnb-clinic, clinic-sw]}\n  - {endpoints: [gnb-clinic-2, clinic-sw]}\n"),
        ("{ue: kiosk-01, gnb: gnb-clinic, sessions", "{ue: kiosk-01, gnb: gnb-clinic, gnbs: [], sessions"),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.replace("\nworkloads:", "\nfaults:\n  - {name: clinic-gnb-lost, type: node-down, target: gnb-clinic, "
                                        "at: 0s, duration: 6s}\nworkloads:", 1)


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    yield from built(_topology(), "two-gnbs.yaml", tmp_path_factory)


def test_a_lost_gnbs_ue_reattaches_through_the_other_and_isolation_holds(tb):
    from testbed.checks.faults import run_drills
    from testbed.engine.ran import read_status, status_path
    from testbed.probe.run import run_probes

    assert tb.ran.subscriber("dr-tablet-01").fallback_gnbs == ("gnb-clinic-2",)
    assert tb.ran.subscriber("kiosk-01").fallback_gnbs == ()
    [r] = [x for x in run_drills(tb) if x.kind == "fault"]
    assert r.status == "pass", r.detail
    m = r.metrics
    [ue] = m["reattach"]["ues"]
    assert ue["ue"] == "dr-tablet-01" and ue["gnb"] == "gnb-clinic-2" and ue["before_restore"], ue
    assert ue["sessions_lost"] == 1 and ue["sessions_reestablished"] == 1, ue
    assert 1.0 <= ue["registered_s"] < 5.0 and ue["sessions_back_s"] < 5.0, ue
    flows = {(f["src"], f["dst"]): f for f in m["affected"] if f["dst"] != "gnb-clinic"}  # not its radio link
    tablet = [f for (src, _), f in flows.items() if src == "dr-tablet-01"]
    kiosk = [f for (src, _), f in flows.items() if src == "kiosk-01"]
    assert tablet and all(f["back_s"] < m["duration_s"] for f in tablet), tablet  # back while the gNB is down
    assert kiosk and all(f["back_s"] >= m["duration_s"] for f in kiosk), kiosk  # only with its own gNB
    assert m["reattach"]["flows_back_s_max"] == max(f["back_s"] for f in tablet)
    assert read_status(status_path(tb, "dr-tablet-01"))["cell"] == "gnb-clinic-2"
    upf = read_status(status_path(tb, tb.ran.sessions[0].upf))
    assert not {"unknown-gnb", "wrong-gnb"} & set(upf.get("drops", {})), upf.get("drops")  # it knew the other gNB
    results = run_probes(tb, scripts=False)
    failed = [(c.kind, c.name, c.detail) for c in results if c.failed]
    assert not failed, failed[:5]
    must_fail = [c for c in results if c.name.startswith("kiosk-01 -> pacs") or
                 (c.name.startswith("dr-tablet-01") and "kiosk" in c.name)]
    assert must_fail and all(c.status == "pass" for c in must_fail), [(c.name, c.status) for c in must_fail]
