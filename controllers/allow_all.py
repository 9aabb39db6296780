"""DELIBERATELY BROKEN: plain forwarding for everyone, ignoring the slice policy.

For tests of the isolation prober only: with this app, every host reaches every
other host (unicast by MAC, ARP flooded along a spanning tree), so the prober
must report leaks and fail the run. Never use it for anything else.
"""
from __future__ import annotations

from controllers.plan_app import PlanApp


class AllowAll(PlanApp):
    follow_plan = False

    def rules(self, plan, dpid):
        from testbed.openflow.forwarding import forwarding_plan
        from testbed.openflow.wiring import Wiring

        w = Wiring(dpids={sw: dp for dp, sw in plan["switch_names"].items()})
        for a, pa, b, pb in plan.get("trunks", []):
            w.ports.setdefault(a, []).append((pa, b, pb))
            w.ports.setdefault(b, []).append((pb, a, pa))
        for h, rec in plan["hosts"].items():
            w.ports.setdefault(rec["switch"], []).append((rec["port"], h, None))
            w.hosts[h] = (rec["switch"], rec["port"], rec["mac"])
        return forwarding_plan(w).get(dpid, []), []

    def tables(self, plan):
        return [0]
