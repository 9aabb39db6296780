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
        from testbed.slicing.flows import wiring_from_plan

        return forwarding_plan(wiring_from_plan(plan)).get(dpid, []), []

    def tables(self, plan):
        return [0]
