"""The 5G path's own verdicts: every planned UE registered, every planned PDU session active.

Read from the run's RAN view (testbed.engine.ran.ran_view), so a UE that did
not register, or a session the core refused or that timed out, fails the run
with its state and cause, instead of only showing up as blocked probes.
"""
from __future__ import annotations

from typing import Any

from testbed.checks.result import CheckResult


def ran_checks(view: dict[str, Any]) -> list[CheckResult]:
    out = []
    for ue in view.get("ues", []):
        ok = ue["state"] == "registered"
        out.append(CheckResult("ran:registration", f"{ue['name']} registers ({ue['supi']} via {ue['gnb']})",
                               "pass" if ok else "fail",
                               f"registered in {ue['registration_ms']} ms" if ok else f"state {ue['state']}",
                               {"registration_ms": ue["registration_ms"], "state": ue["state"]}))
        for s in ue["sessions"]:
            ok = s["state"] == "active"
            detail = (f"{s['tun']} {s['address']} via {s['upf']}, TEIDs UL {s['ul_teid']} DL {s['dl_teid']}, "
                      f"set up in {s['setup_ms']} ms") if ok else \
                f"state {s['state']}" + (f" ({s['cause']})" if s.get("cause") else "")
            out.append(CheckResult("ran:session", f"{ue['name']} PDU session {s['psi']} ({s['slice']}, DNN {s['dnn']})",
                                   "pass" if ok else "fail", detail,
                                   {k: s[k] for k in ("tun", "address", "upf", "ul_teid", "dl_teid", "qfi", "dscp",
                                                      "state", "setup_ms")}))
    return out
