"""Security testers' own probes on real networks: the README's worked example as written, and
script probes of a topology file through `testbed run` and `testbed probe`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import MINIMAL, REPO, cli, leftovers
from tests.probe.test_script_probe import EXAMPLE, readme_example

pytestmark = pytest.mark.integration

ARRIVE = '''\
import os
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.sendrecv import send, sendp
e = os.environ
port = int(__import__("json").loads(e["TESTBED_HOSTS"])[e["TESTBED_TARGET"]]["services"]["emr"].split("/")[1])
seg = TCP(sport=61999, dport=port, flags="S") / Raw(e["TESTBED_TOKEN"].encode())
if e.get("TESTBED_ROUTE_IFACE"):  # a 5G UE: the target is reached through a PDU session (a TUN: IP, no Ethernet)
    send(IP(src=e["TESTBED_ROUTE_IP"], dst=e["TESTBED_TARGET_IP"]) / seg, iface=e["TESTBED_ROUTE_IFACE"], count=2,
         verbose=False)
else:
    sendp(Ether(src=e["TESTBED_SRC_MAC"], dst=e["TESTBED_TARGET_MAC"]) / IP(src=e["TESTBED_SRC_IP"], dst=e["TESTBED_TARGET_IP"])
          / seg, iface=e["TESTBED_IFACE"], count=2, verbose=False)
'''
CRASH = 'raise SystemExit("no target today")\n'
SILENT = 'print("looked around, sent nothing")\n'

PROBES = '''
probes:
  - {name: tablet-opens-emr, type: script, script: probes/arrive.py, from: [dr-tablet-01], to: [emr], expect: arrive}
  - {name: emr-port-syn, type: script, script: probes/syn.py, from: [emr, pacs], to: [dr-tablet-01, kiosk-01],
     expect: blocked}
  - {name: crashes, type: script, script: probes/crash.py, from: [kiosk-01], to: [emr], expect: blocked}
  - {name: silent, type: script, script: probes/silent.py, from: [kiosk-01], to: [emr], expect: blocked}
'''


def _report(path: Path) -> dict:
    return json.loads((path / "report.json").read_text())


def _scripts(rep: dict) -> dict[str, dict]:
    return {c["name"]: c for c in rep["checks"] if c["kind"] == "probe:script"}


def test_readme_example_runs_as_written(network, state_dir, tmp_path):
    argv, _yaml = readme_example()
    assert argv[0] == "testbed"
    r = cli(*argv[1:], "--report-dir", str(tmp_path / "rep"), check=False, timeout=300)
    rep = _report(tmp_path / "rep")
    assert leftovers(rep["run_id"], state_dir) == []
    (c,) = _scripts(rep).values()
    assert r.returncode == 0, r.stdout + r.stderr
    assert c["status"] == "pass" and c["metrics"]["verdict"] == "blocked", c
    assert c["metrics"]["frames_sent"] == 6  # 3 ports, twice each: it did send
    out = " ".join(r.stdout.split())  # rich wraps lines at the terminal's width
    assert "1 script probes" in out and "0 leak(s)" in out
    # The same probe against a network that ignores slices: it arrives, and that is a LEAK.
    r = cli(*argv[1:], "--controller-app", "allow-all", "--report-dir", str(tmp_path / "leak"), "-q",
            check=False, timeout=300)
    rep = _report(tmp_path / "leak")
    assert leftovers(rep["run_id"], state_dir) == []
    (c,) = _scripts(rep).values()
    assert r.returncode == 1 and c["metrics"]["verdict"] == "LEAK" and c["metrics"]["captured_at"] == ["dr-tablet-01"]
    assert {(f["sport"], f["dport"], f["flags"]) for f in c["metrics"]["sent"]} == {
        (443, 22, "S"), (443, 3389, "S"), (443, 5900, "S")}


@pytest.fixture
def topo_with_scripts(tmp_path) -> Path:
    """minimal.yaml with script probes, in a directory of its own (scripts relative to it)."""
    d = tmp_path / "lab"
    (d / "probes").mkdir(parents=True)
    shutil.copy(EXAMPLE, d / "probes" / "syn.py")
    (d / "probes" / "arrive.py").write_text(ARRIVE)
    (d / "probes" / "crash.py").write_text(CRASH)
    (d / "probes" / "silent.py").write_text(SILENT)
    path = d / "minimal-scripts.yaml"
    path.write_text(MINIMAL.read_text() + PROBES)
    return path


def _check_script_verdicts(checks: dict[str, dict]) -> None:
    v = {name: c["metrics"]["verdict"] for name, c in checks.items()}
    assert v == {
        "tablet-opens-emr: dr-tablet-01 -> emr (expect arrive)": "arrived",
        "emr-port-syn: emr -> dr-tablet-01 (expect blocked)": "blocked",
        "emr-port-syn: emr -> kiosk-01 (expect blocked)": "blocked",
        "emr-port-syn: pacs -> dr-tablet-01 (expect blocked)": "blocked",
        "emr-port-syn: pacs -> kiosk-01 (expect blocked)": "blocked",
        "crashes: kiosk-01 -> emr (expect blocked)": "error",
        "silent: kiosk-01 -> emr (expect blocked)": "not sent",
    }, v
    assert "no target today" in checks["crashes: kiosk-01 -> emr (expect blocked)"]["detail"]
    assert "nothing to judge" in checks["silent: kiosk-01 -> emr (expect blocked)"]["detail"]
    assert checks["emr-port-syn: pacs -> kiosk-01 (expect blocked)"]["metrics"]["sent"][0]["sport"] == 104


def test_script_probes_of_a_file_run_with_testbed_run_and_probe(network, state_dir, topo_with_scripts, tmp_path):
    """`testbed run --no-isolation` runs them on their own, `testbed probe` with the isolation
    probe; the failing scripts (one crashes, one sends nothing) fail the run, nothing else does."""
    r = cli("run", str(topo_with_scripts), "--no-isolation", "-q", "--report-dir", str(tmp_path / "run"),
            check=False, timeout=300)
    rep = _report(tmp_path / "run")
    assert leftovers(rep["run_id"], state_dir) == []
    assert r.returncode == 1
    _check_script_verdicts(_scripts(rep))
    assert [c["name"] for c in rep["checks"] if c["status"] == "fail"] == [
        "crashes: kiosk-01 -> emr (expect blocked)", "silent: kiosk-01 -> emr (expect blocked)"]

    r = cli("probe", str(topo_with_scripts), "-q", "--report-dir", str(tmp_path / "probe"), check=False, timeout=300)
    rep = _report(tmp_path / "probe")
    assert leftovers(rep["run_id"], state_dir) == []
    _check_script_verdicts(_scripts(rep))
    assert any(c["kind"] == "attack:source-port" for c in rep["checks"])  # the isolation probe ran too
    assert [c["name"] for c in rep["checks"] if c["status"] == "fail"] == [
        "crashes: kiosk-01 -> emr (expect blocked)", "silent: kiosk-01 -> emr (expect blocked)"]
    assert "7 script probes" in " ".join(r.stdout.split())
