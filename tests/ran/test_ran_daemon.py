"""The programs' common frame (log lines, status file, config errors, SIGTERM) and the control plane on loopback.

No root needed: the core, a gNB and two UEs run on their own 127.x addresses
(nothing leaves the machine), with no UPF, so registration and admission run
for real while every session meets a core that cannot reach its UPF (#26).
The user plane (TUNs, GTP-U) is tested with namespaces in test_ran_programs.py.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.ran import agents, daemon, nas
from testbed.ran.plan import RanPlan, Snssai

REPO = Path(__file__).resolve().parents[2]


def test_a_log_line_is_time_program_event_fields():
    out = io.StringIO()
    daemon.Log("gnb", "gnb-1", out)("session-setup", ue="tablet", psi=1, reason="two words", skipped=None)
    stamp, who, event, *fields = out.getvalue().rstrip("\n").split(" ", 3)[:3] + [out.getvalue().split(" ", 3)[3]]
    assert stamp.endswith("Z") and who == "gnb[gnb-1]" and event == "session-setup"
    assert fields[0].rstrip("\n") == 'ue=tablet psi=1 reason="two words"'


def test_the_status_file_is_replaced_whole_and_throttled(tmp_path):
    path = tmp_path / "st.json"
    st = daemon.StatusFile(str(path), interval=60)
    st.maybe_write(lambda: {"n": 1})
    assert json.loads(path.read_text())["n"] == 1
    st.dirty = True
    st.maybe_write(lambda: {"n": 2})  # within the interval: not yet
    assert json.loads(path.read_text())["n"] == 1
    st.maybe_write(lambda: {"n": 3}, force=True)
    assert json.loads(path.read_text())["n"] == 3 and [p.name for p in tmp_path.iterdir()] == ["st.json"]


@pytest.mark.parametrize("prog", ["ue", "gnb", "amf", "upf"])
def test_a_config_it_cannot_use_exits_2_with_a_log_line(prog, tmp_path, capsys):
    import importlib

    main = importlib.import_module(f"testbed.ran.{prog}").main
    assert main(["--config", str(tmp_path / "none.json")]) == 2
    out = capsys.readouterr().out
    assert "config-error" in out and "cannot read" in out
    (tmp_path / "c.json").write_text(json.dumps({"name": "x"}))
    assert main(["--config", str(tmp_path / "c.json")]) == 2
    out = capsys.readouterr().out
    assert f"{prog}[x] config-error" in out and "missing" in out


# ---------------------------------------------------------------- the control plane on loopback


class Loopback:
    """Core, gNB and UEs on 127.<a>.<b>.x (random), each with its own status file; SIGTERM at the end."""

    def __init__(self, tmp: Path, plan: RanPlan, topo) -> None:
        self.tmp = tmp
        self.base = f"127.{100 + secrets.randbelow(100)}.{secrets.randbelow(250)}"
        self.port = 40000 + secrets.randbelow(20000)
        self.procs: dict[str, subprocess.Popen] = {}
        ip = {"core": f"{self.base}.254", "gnb": f"{self.base}.2", "upf": f"{self.base}.253"}
        configs = {a.program if a.program != "ue" else a.node: a.config for a in agents.agents(topo, plan)}
        core = json.loads(json.dumps(configs["amf"]))
        core.update(address=ip["core"], ngap_port=self.port, n4_port=self.port + 1)
        core["plan"]["core"]["address"] = ip["core"]
        for u in core["plan"]["upfs"]:
            u["address"] = ip["upf"]  # nothing listens there: every N4 request is refused at once
        gnb = dict(configs["gnb"], address=ip["gnb"], amf={"address": ip["core"], "port": self.port},
                   rls_port=self.port + 2, gtpu_port=self.port + 3)
        sub = plan.subscribers[0]
        ue = dict(configs[sub.name], address=f"{self.base}.10", gnb={"address": ip["gnb"], "port": self.port + 2},
                  rls_port=self.port + 2, timers={"heartbeat": 0.3})
        rogue = dict(ue, name="rogue", supi="imsi-460009999999999", ue_id=4242, address=f"{self.base}.11",
                     registration=nas.registration_request("imsi-460009999999999", [Snssai(1, "000001")]).hex(),
                     sessions=[])
        self.configs = {"core": core, "gnb": gnb, "ue": ue, "rogue": rogue}
        self.sub = sub

    def start(self, role: str) -> None:
        prog = {"core": "amf", "rogue": "ue"}.get(role, role)
        (self.tmp / f"{role}.json").write_text(json.dumps(self.configs[role]))
        self.procs[role] = subprocess.Popen(
            [sys.executable, "-m", f"testbed.ran.{prog}", "--config", str(self.tmp / f"{role}.json"),
             "--status", str(self.tmp / f"{role}-status.json")],
            stdout=open(self.tmp / f"{role}.log", "w"), stderr=subprocess.STDOUT, cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO)))

    def status(self, role: str) -> dict:
        try:
            return json.loads((self.tmp / f"{role}-status.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait(self, role: str, pred, timeout: float = 20.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.status(role)
            if st and pred(st):
                return st
            assert self.procs[role].poll() is None, (self.tmp / f"{role}.log").read_text()
            time.sleep(0.05)
        log = (self.tmp / f"{role}.log").read_text()
        raise AssertionError(f"{role}: {json.dumps(self.status(role))[:1000]}\n{log}")

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for role, p in reversed(list(self.procs.items())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                codes[role] = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[role] = p.wait()
        return codes


def test_registration_and_admission_on_loopback(tmp_path, minimal, minimal_plan):
    lab = Loopback(tmp_path, minimal_plan, minimal)
    try:
        lab.start("core")
        lab.wait("core", lambda s: True)
        lab.start("gnb")
        gnb = lab.wait("gnb", lambda s: s["n2"]["state"] == "ready")
        assert gnb["n2"]["transport"] in ("sctp", "tcp")
        lab.start("ue")
        lab.start("rogue")
        ue = lab.wait("ue", lambda s: s["registered"] and all(x["state"] == "rejected" for x in s["sessions"]))
        assert ue["registration_ms"] > 0 and ue["allowed_nssai"] == [str(x) for x in lab.sub.nssai]
        assert {(x["psi"], x["cause"], x["cause_name"]) for x in ue["sessions"]} == {
            (s.psi, 26, "insufficient-resources") for s in lab.sub.sessions}  # no UPF answers N4
        rogue = lab.wait("rogue", lambda s: s["state"] == "rejected")
        assert rogue["reject"] == {"kind": "registration", "cause": 7, "cause_name": "services-not-allowed"}
        core = lab.wait("core", lambda s: s["counters"]["registration_rejects"] == 1)
        assert core["counters"]["registrations"] == 1
        assert {(r["kind"], r["cause"], r["ue"]) for r in core["rejects"]} == {
            ("registration", 7, None), *{("session", 26, lab.sub.name) for _ in lab.sub.sessions}}
        assert core["n4"]["upfs"] == {u.name: "unreachable" for u in minimal_plan.upfs}
        _garbage_does_not_stop_the_core(lab)
    finally:
        codes = lab.stop_all()
    assert codes == {"rogue": 0, "ue": 0, "gnb": 0, "core": 0}
    assert "stop signal=SIGTERM" in (tmp_path / "gnb.log").read_text()


def _garbage_does_not_stop_the_core(lab: Loopback) -> None:
    """A peer on N2 sending broken NGAP, then broken NAS in a valid InitialUEMessage: logged, counted, still up."""
    from testbed.ran import n2, ngap

    sock = n2.connect(lab.configs["core"]["address"], lab.port, n2.TCP, source=f"{lab.base}.77")
    conn = n2.Conn(sock, n2.TCP, ("core", lab.port))
    try:
        conn.send(b"\xff\x00garbage")
        conn.send(ngap.ng_setup_request(99, "46000", 1, [Snssai(1, "000001")], "fuzzer"))
        conn.send(ngap.initial_ue_message(1, b"\x7e\x00\x41\xff", "46000", 99 << 4, 1))
        conn.send(ngap.initial_ue_message(2, b"", "46000", 99 << 4, 1))
        core = lab.wait("core", lambda s: s["counters"].get("nas_undecodable", 0) >= 2
                        and s["counters"].get("ngap_undecodable", 0) >= 1)
        assert lab.procs["core"].poll() is None and len(core["gnbs"]) == 2
    finally:
        conn.close()


def test_dscp_peer_sends_from_the_shared_port_with_its_marking():
    """G-PDUs leave from the GTP-U port itself (the switches' direct rule wants 2152 -> 2152) and carry the
    session's DSCP, alone and in a GSO burst."""
    import socket

    from testbed.ran import daemon, gso

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    rx.settimeout(2)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    peer = daemon.DscpPeer(tx, "127.0.0.1", rx.getsockname()[1], dscp=18)
    peer.send(b"one")
    batch = gso.Batch()
    for _ in range(3):
        batch.buf[batch.used:batch.used + 4] = b"burs"
        batch.push(peer, None, 4)
    batch.flush()
    got = []
    for _ in range(4):
        data, anc, _flags, src = rx.recvmsg(100, 64)
        tos = next(v[0] for level, kind, v in anc if level == socket.IPPROTO_IP and kind == socket.IP_TOS)
        got.append((data, src, tos >> 2))
    assert got == [(b"one", tx.getsockname(), 18)] + [(b"burs", tx.getsockname(), 18)] * 3
    assert batch.errors == 0
    rx.close()
    tx.close()
