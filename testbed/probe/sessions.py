"""Where a 5G UE's probes leave from: the PDU session routes of a running testbed.

A UE of a 5G run reaches the services its slices grant through its sessions:
its UE program routes each granted service's address through the TUN of the
first session whose slice grants it (testbed.ran.agents.session_routes), and
the packets reach the service from the session's address. The prober sends as
the kernel would (traffic.tunroute) and must look for them under that source
address, and capture replies on the TUNs. Only sessions the UE's status file
shows active count: a refused session has no TUN.
"""
from __future__ import annotations

from testbed.engine.ran import read_status, status_path
from testbed.ran.agents import session_routes

Routes = dict[str, dict[str, tuple[str, str]]]  # UE -> {destination address: (TUN, session address)}


def ue_routes(tb) -> Routes:
    """UE -> {destination address: (its session's TUN, the session's address)}, active sessions only."""
    plan = getattr(tb, "ran", None)
    if plan is None:
        return {}
    addresses = {n: str(i.ip) for n, i in tb.layout.ips.items()}
    routes = session_routes(tb.topo, plan, addresses)
    out: Routes = {}
    for sub in plan.subscribers:
        active = {s.get("psi") for s in read_status(status_path(tb, sub.name)).get("sessions", [])
                  if s.get("state") == "active"}
        for s in sub.sessions:
            if s.psi in active:
                for dest in routes.get((sub.name, s.psi), []):
                    out.setdefault(sub.name, {})[dest.split("/")[0]] = (s.tun, str(s.address))
    return out


def job_fields(routes: Routes, node: str, node_ip: str, node_mac: str) -> dict:
    """What traffic.send needs to send a UE's crafted frames through its sessions."""
    r = routes.get(node)
    return {"node_ip": node_ip, "node_mac": node_mac, "tun_routes": {d: list(v) for d, v in r.items()}} if r else {}
