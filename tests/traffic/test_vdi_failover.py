"""Desktop failover on loopback (no root): a desktop host goes silent mid-session, the client moves to the spare."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

from testbed.checks.desktops import failover_metrics, verdict
from testbed.engine.pki import make_pki

from tests.traffic.loopback import free_port, stop


def _server(pki, name: str, addr: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "traffic.vdi_server", "--bind", addr, "--port", str(port),
                             "--cert", str(pki / f"{name}.crt"), "--key", str(pki / f"{name}.key")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection((addr, port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"vdi_server on {addr} did not listen")


def test_a_silent_host_loses_its_session_to_the_spare_and_the_timeline_says_when(tmp_path):
    pki = make_pki(tmp_path, "unit", {"desk": "127.0.0.1", "spare": "127.0.0.2"})
    port = free_port()
    main, spare = _server(pki, "desk", "127.0.0.1", port), _server(pki, "spare", "127.0.0.2", port)
    try:
        client = subprocess.Popen([sys.executable, "-m", "traffic.vdi_client", "--host", "desk", "--addr", "127.0.0.1",
                                   "--port", str(port), "--ca", str(pki / "ca.crt"), "--duration", "5",
                                   "--failover", "spare=127.0.0.2", "--dead-after", "0.5", "--timeline"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)
        t_kill = time.time()
        main.send_signal(signal.SIGSTOP)  # the host is gone: it answers nothing, closes nothing
        out, err = client.communicate(timeout=40)
    finally:
        main.send_signal(signal.SIGCONT)
        stop(main), stop(spare)
    doc = json.loads(out)
    assert doc["errors"] == [], (doc["errors"], err)
    [tl] = doc["timeline"]
    assert [(e[1], e[2]) for e in tl["events"]] == [("connected", "desk"), ("lost", "desk"), ("connected", "spare")]
    row = failover_metrics(tl, "desk", t_kill, slo=100.0)
    assert row["on_host_at_kill"] and row["moved_to"] == "spare"
    assert 0.4 <= row["detected_s"] <= 2.0 and row["detected_s"] <= row["back_s"] <= 3.0
    assert row["back_s"] <= row["slo_back_s"] <= 4.0
    assert row["inputs_lost"] >= 3  # ~13 inputs a second went unanswered while the host was silent
    answered_on_spare = [i for i in tl["inputs"] if i[2] == "spare" and i[1] is not None]
    assert len(answered_on_spare) >= 10
    ok, line, m = verdict([{"src": "tablet", "session": 1, **row}], restore_after_s=10.0)
    assert ok and m["moved_to"] == ["spare"] and "moved to spare" in line


def test_a_session_not_back_before_the_restore_fails_its_drill():
    tl = {"events": [[99.0, "connected", "desk"], [101.0, "lost", "desk"], [106.0, "connected", "spare"]],
          "inputs": [[100.0 + i / 10, 5.0, "desk"] for i in range(10)]
          + [[106.0 + i / 10, 5.0, "spare"] for i in range(30)]}
    row = failover_metrics(tl, "desk", t_kill=100.5, slo=100.0)
    assert row["back_s"] == 5.5 and row["slo_back_s"] == 5.5
    ok, line, _ = verdict([{"src": "tablet", "session": 1, **row}], restore_after_s=4.0)
    assert not ok and "not back within SLO" in line
    slow = dict(tl, inputs=[[106.0 + i / 10, 300.0, "spare"] for i in range(30)])
    assert failover_metrics(slow, "desk", t_kill=100.5, slo=100.0)["slo_back_s"] is None  # back, but too slow
