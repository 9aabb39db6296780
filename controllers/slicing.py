"""Slice isolation: install the slicing plan (admission, DSCP, meters, forwarding), follow grants.

The rules come from testbed/slicing/flows.py via the plan file: table 0 admits
only host pairs the slice policy grants (true MAC + IP of the sender, no VLAN
tag) and hands their IP to the connection tracker; table 1 lets a member open
what its slice grants (commit, the slice in ct_mark) and passes established
and related traffic of the slice's connections, with DSCP from the slice's 5QI
and its meter; table 2 passes committed packets on; table 3 forwards by
destination MAC; every table ends in a drop. So only the granted side opens
connections (controllers/stateless.py keeps the stateless rules, as a negative
control). `testbed slice grant|revoke` rewrites the plan with a new
generation, which PlanApp installs as a difference without a restart.

Unlike `forwarding`, this app refuses a plan that is not a slicing plan: the
switches then hold only the default drop (fail secure), and the log says why.
"""
from __future__ import annotations

from controllers.plan_app import PlanApp
from testbed.slicing.cookies import slice_id


class SliceEnforcer(PlanApp):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.plan.get("mode") != "slicing":
            self.logger.error("plan mode is %r, not 'slicing' (does the topology define slices?); "
                              "switches get the default drop only", self.plan.get("mode"))
        else:
            counts: dict[int, int] = {}
            for rules in self.plan["switches"].values():
                for r in rules:
                    sid = slice_id(r.get("cookie", 0))
                    counts[sid] = counts.get(sid, 0) + 1
            names = {s["id"]: name for name, s in self.plan.get("slices", {}).items()}
            self.logger.info("slicing plan generation %s: %s", self.plan.get("generation"),
                             ", ".join(f"{names.get(i, i)}: {n} rules" for i, n in sorted(counts.items())))

    def rules(self, plan, dpid):
        if plan.get("mode") != "slicing":
            return [], []
        return super().rules(plan, dpid)
