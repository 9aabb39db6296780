"""Reject with a back-off timer, without sockets: the UE asks again after T3396 (and only then), the SMF holds
requests to a UPF whose N4 just failed until its next heartbeat answer, without declaring it lost."""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from testbed.ran import nas, uenas
from testbed.ran.daemon import Loop, StatusFile
from testbed.ran.plan import ran_plan
from testbed.ran.smf import Smf
from testbed.ran.uesessions import MAX_BACKOFFS, PduSessions, UeSession
from tests.ran.conftest import mec_topology


@pytest.fixture
def ue(tmp_path):
    loop = Loop()
    sent: list[bytes] = []
    sess = UeSession({"psi": 1, "slice": "imaging", "request": "2e0101c1", "tun": "uesimtun0"})
    pdus = PduSessions({1: sess}, 1, 1400, 16.0, 60.0, 5, SimpleNamespace(send=lambda kind, pdu: sent.append(pdu)),
                       lambda: True, Counter(), [], lambda *a, **k: None, StatusFile(str(tmp_path / "ue.json")), loop)
    yield SimpleNamespace(pdus=pdus, sess=sess, sent=sent, loop=loop)
    loop.close()


def _due(loop: Loop) -> list[float]:
    return sorted(when for when, _seq, handle in loop.timers if handle[0] is not None)


def test_a_reject_with_a_back_off_timer_is_asked_again_after_it(ue):
    ue.pdus.request(ue.sess)
    assert len(ue.sent) == 1
    reject = uenas.decode(nas.dl_nas_transport(nas.session_reject(1, 1, nas.SmCause.INSUFFICIENT_RESOURCES, 2), 1))
    ue.pdus.reject(reject)
    assert ue.sess.state == "rejected" and ue.sess.cause_name == "insufficient-resources"
    [when] = _due(ue.loop)  # only the back-off (T3580 of the first request is cancelled)
    [(_, _, handle)] = [t for t in ue.loop.timers if t[2][0] is not None]
    handle[0]()
    assert len(ue.sent) == 2 and ue.sess.state == "requested" and ue.sess.attempts == 1


def test_a_reject_without_a_back_off_timer_is_final(ue):
    ue.pdus.request(ue.sess)
    ue.pdus.reject(uenas.decode(nas.session_reject(1, 1, nas.SmCause.SERVICE_OPTION_NOT_SUBSCRIBED)))
    assert ue.sess.state == "rejected" and not _due(ue.loop)


def test_back_offs_in_a_row_are_bounded(ue):
    reject = uenas.decode(nas.session_reject(1, 1, nas.SmCause.INSUFFICIENT_RESOURCES, 2))
    for _ in range(MAX_BACKOFFS + 3):
        ue.pdus.request(ue.sess)
        ue.pdus.reject(reject)
    assert ue.sess.backoffs == MAX_BACKOFFS and ue.sess.state == "rejected"


def test_an_n4_failure_holds_requests_until_a_heartbeat_answer_and_loses_nothing(tmp_path):
    plan = ran_plan(mec_topology())
    loop = Loop()
    changes: list = []
    smf = Smf(plan, "core", str(plan.core.address), 38412, lambda *a, **k: None,
              StatusFile(str(tmp_path / "core.json")), loop)
    smf.on_upf_change = lambda n, alive: changes.append((n, alive))
    tried: list[str] = []

    def timeout(request):
        tried.append(request["op"])
        raise TimeoutError("timed out")

    smf.upfs["upf-edge"].request = timeout
    first = smf.request("upf-edge", {"op": "establish"})
    second = smf.request("upf-edge", {"op": "establish"})
    assert not first["ok"] and not second["ok"] and "no PFCP heartbeat answer since" in second["error"]
    assert tried == ["establish"]  # the second waited for no timeout
    assert not smf.lost("upf-edge") and changes == []  # the heartbeats decide losses
    smf.heartbeats.last_seen["upf-edge"] = smf.n4_failed["upf-edge"][0] + 0.1  # an answer came
    smf.upfs["upf-edge"].request = lambda request: {"ok": True}
    assert smf.request("upf-edge", {"op": "establish"}) == {"ok": True}
    assert "upf-edge" not in smf.n4_failed
    loop.close()
    smf.close()


def test_tshark_reads_the_back_off_timer_of_the_reject(tmp_path):
    """Wireshark's own NAS-5GS dissector (fed through an exported-PDU record, link type 252) agrees."""
    import shutil
    import struct
    import subprocess

    if shutil.which("tshark") is None:
        pytest.skip("tshark is missing (scripts/setup.sh installs it)")
    from scapy.all import Raw, wrpcap

    name = b"nas-5gs"
    tags = struct.pack(">HH", 12, len(name)) + name + struct.pack(">HH", 0, 0)  # PROTO_NAME, end of options
    pdu = nas.dl_nas_transport(nas.session_reject(3, 1, nas.SmCause.INSUFFICIENT_RESOURCES, 30), 3)
    wrpcap(str(tmp_path / "nas.pcap"), [Raw(tags + pdu)], linktype=252)
    out = subprocess.run(["tshark", "-r", str(tmp_path / "nas.pcap"), "-T", "fields", "-e", "nas_5gs.sm.5gsm_cause",
                          "-e", "gsm_a.gm.gmm.gprs_timer3_unit", "-e", "gsm_a.gm.gmm.gprs_timer3_value"],
                         capture_output=True, text=True, timeout=60).stdout.split()
    assert out == ["26", "3", "15"], out  # unit 3: 2 s steps, 15 of them
