"""Which OpenFlow plan a run's controller gets, from the topology and its layout.

The one place the engine asks "what rules should the switches hold?". A topology
with slices gets the slicing plan (testbed.slicing.flows: only what the slice
policy grants, default drop); one without gets plain forwarding (plan.py).
Either way the plan also says what the controller needs to know about the
network (hosts, their addresses and attachments), so any app can use it.
"""
from __future__ import annotations

from testbed.openflow.layout import Layout
from testbed.openflow.forwarding import forwarding_plan
from testbed.slicing.policy import Policy
from testbed.topology.model import Topology

PLAN_VERSION = 2


def controller_plan(topo: Topology, layout: Layout, extra_members: dict[str, list[str]] | None = None,
                    revoked: dict[str, list[str]] | None = None, generation: int = 1,
                    policy: Policy | None = None, aliases: dict[str, tuple[str, str]] | None = None) -> dict:
    """The JSON document the controller app installs.

    {"version", "generation", "mode": "slicing"|"forwarding", "tables": [...],
     "switches": {dpid: [rule, ...]}, "meters": {dpid: [meter, ...]}, "hosts": {...}, ...}
    A rule is {"table", "priority", "match", "actions", "cookie", "note"} plus
    optional "meter" (id) and "goto" (table). A masked match field is [value, mask]
    (ct_state, tcp_flags, ip_frag); an action is {"output": port}, {"set_field":
    {field: value}} or {"ct": {"zone", "table", "commit", "mark"}} (conntrack: look
    up or commit in the zone, set ct_mark on commit, then continue in "table").
    A slicing plan also says "frag_mode" (the switches' fragment handling) and
    "conntrack": {"zone"}. `extra_members`/`revoked` are the
    run-time slice grants and revocations (`testbed slice grant|revoke`).

    `policy` replaces the file's own (the engine passes the 5G run's, see
    testbed.ran.network), and `aliases` adds hosts that have no port of their
    own: name -> (the host whose port and MAC they use, their address); a PDU
    session behind its UPF. An alias answers no ARP: its host does.
    """
    wiring = layout.wiring()
    ips = {name: str(ip.ip) for name, ip in layout.ips.items()}
    arp_ips: dict[str, str] = {}
    for name, (host, address) in (aliases or {}).items():
        wiring.hosts[name] = wiring.hosts[host]
        ips[name] = address
        arp_ips[name] = ips[host]
    hosts = {h: {"switch": sw, "dpid": wiring.dpids[sw], "port": port, "mac": mac, "ip": ips.get(h)}
             | ({"arp_ip": arp_ips[h]} if h in arp_ips else {})
             for h, (sw, port, mac) in sorted(wiring.hosts.items())}
    trunks = sorted((a, pa, b, pb) for a, ports in wiring.ports.items() for pa, b, pb in ports
                    if b in wiring.dpids and a < b)
    if topo.slices:
        from testbed.slicing.conntrack import ct_zone
        from testbed.slicing.flows import slicing_plan
        from testbed.slicing.policy import compile_policy

        pol = policy if policy is not None else compile_policy(topo, extra_members, revoked)
        plan = slicing_plan(topo, pol, wiring, ips, zone=ct_zone(layout.run_id), arp_ips=arp_ips)
    else:
        plan = {"mode": "forwarding", "tables": [0], "switches": forwarding_plan(wiring), "meters": {}}
    plan.update(version=PLAN_VERSION, generation=generation, hosts=hosts,
                switch_names={dp: sw for sw, dp in wiring.dpids.items()}, trunks=trunks)
    return plan
