"""DELIBERATELY WEAKER: the slice rules as they were before connection tracking, for the prober's
negative control (`--controller-app stateless`).

Same policy, same admission, anti-spoofing, ARP, DSCP and meters as `slicing`,
but stateless: a provider's packet passes whenever its source port is the
service's (any destination port, any TCP flags), so a compromised server can
open connections to members (a SYN scan with `--source-port 443` finds their
open ports), and ACK/FIN/Xmas/NULL segments and "replies" to nothing arrive.
The rules are compiled from the plan the testbed wrote (testbed.slicing.flows.
stateless_rules), so live grants and revocations apply here too. Never use it
for anything but showing what the stateful rules stop.
"""
from __future__ import annotations

from controllers.plan_app import PlanApp
from testbed.slicing.flows import stateless_rules


class StatelessSlicing(PlanApp):
    def __init__(self, *args, **kwargs):
        self._compiled: dict[int, dict] = {}  # plan generation -> compiled rule set
        super().__init__(*args, **kwargs)
        if self.plan.get("mode") != "slicing":
            self.logger.error("plan mode is %r, not 'slicing'; switches get the default drop only",
                              self.plan.get("mode"))
        else:
            self.logger.warning("STATELESS slice rules (negative control): providers can open connections")

    def _rules_of(self, plan: dict) -> dict | None:
        if plan.get("mode") != "slicing":
            return None
        gen = plan.get("generation", 0)
        if gen not in self._compiled:
            self._compiled = {g: c for g, c in self._compiled.items() if g >= gen - 1}  # old and new plan only
            self._compiled[gen] = stateless_rules(plan)
        return self._compiled[gen]

    def rules(self, plan, dpid):
        compiled = self._rules_of(plan)
        if compiled is None:
            return [], []
        return compiled["switches"].get(dpid, []), compiled["meters"].get(dpid, [])

    def tables(self, plan):
        compiled = self._rules_of(plan)
        return compiled["tables"] if compiled else [0]

    def frag_mode(self, plan):
        return "normal"
