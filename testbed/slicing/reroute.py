"""A plan as it must be while some trunk ports are down: forwarding recomputed around them (pure).

The controller app hears a port go down (OpenFlow port status) and installs
the difference between the plan as written and this one: only the forwarding
rules change (table 3 of a slicing plan; the whole plain forwarding plan),
so admission, connection tracking, meters and marking stay exactly as they
were and a failover opens no isolation hole. The trees are recomputed on the
remaining links, so traffic takes the redundant path where there is one;
a destination no path reaches any more loses its forwarding rules (dropped
rather than sent into the cut). When the port comes back, the original plan
is back.
"""
from __future__ import annotations

from testbed.openflow.forwarding import forwarding_plan
from testbed.slicing.cookies import decode_cookie

Port = tuple[str, int]  # (switch name, port number)


def trunk_ends(plan: dict) -> set[Port]:
    """Every switch port of a switch-to-switch link in the plan."""
    return {(a, pa) for a, pa, _b, _pb in plan.get("trunks", [])} | {(b, pb) for _a, _pa, b, pb in plan.get("trunks", [])}


def without_ports(plan: dict, down: set[Port]) -> dict:
    """`plan` with its forwarding recomputed as if the trunks at `down` did not exist."""
    cut = {tuple(t) for t in plan.get("trunks", []) if (t[0], t[1]) in down or (t[2], t[3]) in down}
    if not cut:
        return plan
    # imported here, not at the top: testbed.slicing.flows pulls in the topology model (pydantic, ~0.3 s),
    # and the controller imports this module at start, where a restarted one must be listening before
    # the switches' next reconnect attempt (one a second); it needs this only once a trunk is down
    from testbed.slicing.flows import forward_rules, wiring_from_plan

    live = dict(plan, trunks=[t for t in plan.get("trunks", []) if tuple(t) not in cut])
    w = wiring_from_plan(live)
    if plan.get("mode") == "slicing":
        fwd = forward_rules(w)
        switches = {dp: [r for r in rules if (decode_cookie(r.get("cookie", 0)) or (0, ""))[1] != "forward"]
                    + fwd.get(dp, []) for dp, rules in plan["switches"].items()}
    else:
        switches = forwarding_plan(w)
    return dict(plan, switches=switches)
