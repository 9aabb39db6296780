"""A rogue terminal on a running 5G path: a UE program with a SUPI the core does not know.

It runs inside a real UE node (beside that UE's own program, on another RLS
port), camps on the same gNB and asks to register for every slice of the file.
The core must reject the registration (5GMM cause #7, services not allowed),
the UE must end up with no PDU session and no uesimtun of its own, and the
reject must be in the core's log and status, where `testbed ran status` and
the report show it. A registration accepted, or a session set up, is a LEAK.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

from testbed.checks.result import CheckResult
from testbed.engine.ran import ran_dir, read_status, status_path
from testbed.ran import agents, nas

ROGUE_UE_ID = 65000  # an RLS UE id no planned UE has (they count from 1)
ROGUE_RLS_PORT = 4998  # beside the node's own UE program on 4997
WAIT_S = 10.0


def unknown_supi(plan) -> str:
    """A SUPI of the plan's PLMN that no subscriber has."""
    known = {s.supi for s in plan.subscribers}
    width = 15 - len(plan.plmn)
    n = 10 ** width - 1
    while f"imsi-{plan.plmn}{n:0{width}d}" in known:
        n -= 1
    return f"imsi-{plan.plmn}{n:0{width}d}"


def rogue_ue(tb) -> list[CheckResult]:
    plan = tb.ran
    host = next((s for s in plan.subscribers if s.name in tb.node_runtime), None)
    if host is None:
        return []
    supi = unknown_supi(plan)
    nssai = tuple(dict.fromkeys(s.snssai for s in plan.slices))
    addr = str(tb.layout.ips[host.name].ip)
    cfg = dict(agents.ue_config(plan, host, addr, {}), name=f"rogue-{host.name}", supi=supi, ue_id=ROGUE_UE_ID,
               rls_port=ROGUE_RLS_PORT, sessions=[], registration=nas.registration_request(
                   supi, nssai, mnc_len=len(plan.mnc)).hex())
    d = ran_dir(tb)
    cfg_path, rogue_status = d / "rogue.json", status_path(tb, "rogue")
    cfg_path.write_text(json.dumps(cfg))
    t0 = time.monotonic()
    with open(d / "rogue.log", "ab") as log:
        proc = tb.node(host.name).popen([sys.executable, "-m", "testbed.ran.ue", "--config", str(cfg_path),
                                         "--status", str(rogue_status)], stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        st: dict = {}
        while time.monotonic() - t0 < WAIT_S:
            st = read_status(rogue_status)
            if st.get("state") in ("rejected", "registered"):
                break
            time.sleep(0.1)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    logged: list[dict] = []
    deadline = time.monotonic() + 3.0  # the core rewrites its status file about once a second
    while not logged and time.monotonic() < deadline:
        core = read_status(status_path(tb, plan.core.name))
        logged = [r for r in core.get("rejects", []) if r.get("supi") == supi]
        if not logged:
            time.sleep(0.2)
    state = st.get("state", "no status")
    metrics = {"supi": supi, "via": host.gnb, "node": host.name, "state": state, "reject": st.get("reject"),
               "core_rejects": logged[-1:], "verdict": "LEAK" if state == "registered" else "refused"}
    name = f"unknown SUPI {supi} registers from {host.name} via {host.gnb}, for every slice"
    seconds = time.monotonic() - t0
    if state == "registered" or st.get("sessions"):
        return [CheckResult("attack:rogue-ue", name, "fail", "LEAK: the core registered a SUPI it does not know",
                            metrics, seconds)]
    if state != "rejected" or not logged:
        return [CheckResult("attack:rogue-ue", name, "fail",
                            f"inconclusive: UE state {state}, {len(logged)} reject(s) in the core's status "
                            "(no answer is not a refusal)", metrics, seconds)]
    return [CheckResult("attack:rogue-ue", name, "pass",
                        f"rejected by the core ({logged[-1].get('reason') or logged[-1].get('cause')}); "
                        "no session, logged in the core's status", metrics, seconds)]
