"""Bad topology files, stage 3: whole-graph checks. Each entry: (id, YAML text, field, line, message fragment).
"""
from __future__ import annotations

from bad_case import case


CASES = [
    # --- stage 3: whole graph -----------------------------------------------------
    case("duplicate-node-name", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
          - {name: h1, kind: vdi}
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[2].name", 5, "duplicate name 'h1'"),
    case("duplicate-site", """\
        name: t
        sites:
          - {name: dc, type: datacentre}
          - {name: dc, type: clinic}
        nodes:
          - {name: sw, kind: switch, site: dc}
        """, "sites[1].name", 4, "duplicate name 'dc'"),
    case("unknown-site-reference", """\
        name: t
        sites:
          - {name: dc, type: datacentre}
        nodes:
          - {name: sw, kind: switch, site: dc}
          - {name: h1, kind: server, site: cd}
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[1].site", 6, "unknown site 'cd'"),
    case("link-to-unknown-node", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - endpoints:
              - sw
              - ghost
        """, "links[1].endpoints[1]", 9, "unknown node 'ghost'"),
    case("self-loop-link", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [sw, sw]}
        """, "links[1].endpoints", 7, "cannot connect 'sw' to itself"),
    case("host-to-host-link", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
          - {name: h2, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, h1]}
        """, "links[1].endpoints", 8, "both hosts"),
    case("host-with-no-link", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
          - {name: lonely, kind: ue}
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[2].name", 5, "host 'lonely' has no link"),
    case("host-with-two-links", """\
        name: t
        nodes:
          - {name: sw1, kind: switch}
          - {name: sw2, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [sw1, sw2]}
          - {endpoints: [h1, sw1]}
          - {endpoints: [h1, sw2]}
        """, "nodes[2].name", 5, "has 2 links; a host has exactly one"),
    case("disconnected-island", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
          - {name: island-sw, kind: switch}
          - {name: h2, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, island-sw]}
        """, "nodes[2].name", 5, "'island-sw' is not connected to 'sw'"),
    case("switch-with-ip", """\
        name: t
        nodes:
          - {name: sw, kind: switch, ip: 10.77.0.5}
        """, "nodes[0].ip", 3, "a switch has no address"),
    case("duplicate-ip", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, ip: 10.77.0.10}
          - {name: h2, kind: server, ip: 10.77.0.10}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, sw]}
        """, "nodes[2].ip", 5, "10.77.0.10 is already used by 'h1'"),
    case("ip-outside-pool", """\
        name: t
        defaults:
          addressing: {pool: 10.77.0.0/24}
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, ip: 192.168.1.10}
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[1].ip", 6, "outside the address pool 10.77.0.0/24"),
    case("ip-is-pool-network-address", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, ip: 10.77.0.0}
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[1].ip", 4, "network or broadcast address"),
    case("pool-exhausted", """\
        name: t
        defaults:
          addressing:
            pool: 10.77.0.0/30
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
          - {name: h2, kind: server}
          - {name: h3, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, sw]}
          - {endpoints: [h3, sw]}
        """, "defaults.addressing.pool", 4, "exhausted at node 'h3'"),
    case("duplicate-mac-case-insensitive", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, mac: "02:aa:00:00:00:01"}
          - {name: h2, kind: server, mac: "02:AA:00:00:00:01"}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, sw]}
        """, "nodes[2].mac", 5, "already used by 'h1'"),
    case("service-port-offered-twice", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - name: h1
            kind: server
            services: [emr, {name: web, port: 443}]
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[1].services", 6, "tcp/443 is offered twice"),
    case("services-on-a-switch", """\
        name: t
        nodes:
          - {name: sw, kind: switch, services: [emr]}
        """, "nodes[0].services", 3, "a switch does not offer services"),
    case("services-on-a-ue", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: u1, kind: ue, services: [emr]}
        links:
          - {endpoints: [u1, sw]}
        """, "nodes[1].services", 4, "a ue does not offer services"),
    case("slice-unknown-member", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: u1, kind: ue}
        links:
          - {endpoints: [u1, sw]}
        slices:
          - name: s1
            members:
              - u1
              - u2
        """, "slices[0].members[1]", 11, "unknown node 'u2'"),
    case("slice-switch-member", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: u1, kind: ue}
        links:
          - {endpoints: [u1, sw]}
        slices:
          - {name: s1, members: [sw]}
        """, "slices[0].members[0]", 8, "is a switch"),
    case("slice-unknown-service", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: emr, kind: server, services: [emr]}
        links:
          - {endpoints: [emr, sw]}
        slices:
          - name: s1
            services:
              - pacs
        """, "slices[0].services[0]", 10, "no node offers service 'pacs'"),
    case("slice-invalid-5qi", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
        slices:
          - name: s1
            sd: "000001"
            fiveqi: 42
        """, "slices[0].fiveqi", 7, "42 is not a standardised 5QI"),
    case("slice-duplicate-s-nssai", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
        slices:
          - name: s1
            sst: 1
            sd: "00000a"
          - name: s2
            sst: 1
            sd: "00000A"
        """, "slices[1].sd", 10, "S-NSSAI sst=1 sd=00000A is used by more than one slice"),
    case("ran-binding-of-a-non-ue", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: g1, kind: gnb}
          - {name: h1, kind: server}
        links:
          - {endpoints: [g1, sw]}
          - {endpoints: [h1, sw]}
        ran:
          ues:
            - {ue: h1, gnb: g1}
        """, "ran.ues[0].ue", 11, "'h1' is not a node of kind ue"),
    case("ran-unknown-gnb", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: u1, kind: ue}
        links:
          - {endpoints: [u1, sw]}
        ran:
          ues:
            - ue: u1
              gnb: gnb-x
        """, "ran.ues[0].gnb", 10, "unknown node 'gnb-x'"),
    case("ran-ue-bound-twice", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: g1, kind: gnb}
          - {name: u1, kind: ue}
        links:
          - {endpoints: [g1, sw]}
          - {endpoints: [u1, sw]}
        ran:
          ues:
            - {ue: u1, gnb: g1}
            - {ue: u1, gnb: g1}
        """, "ran.ues[1].ue", 12, "UE 'u1' is bound twice"),
    case("ran-session-on-slice-without-ue", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: g1, kind: gnb}
          - {name: u1, kind: ue}
          - {name: u2, kind: ue}
        links:
          - {endpoints: [g1, sw]}
          - {endpoints: [u1, sw]}
          - {endpoints: [u2, sw]}
        slices:
          - {name: s1, members: [u2]}
        ran:
          ues:
            - ue: u1
              gnb: g1
              sessions:
                - slice: s1
        """, "ran.ues[0].sessions[0].slice", 18, "not on slice 's1''s whitelist"),
    case("ran-session-on-unknown-slice", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: g1, kind: gnb}
          - {name: u1, kind: ue}
        links:
          - {endpoints: [g1, sw]}
          - {endpoints: [u1, sw]}
        ran:
          ues:
            - {ue: u1, gnb: g1, sessions: [{slice: nope}]}
        """, "ran.ues[0].sessions[0].slice", 11, "unknown slice 'nope'"),
    case("workload-unknown-source", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
        workloads:
          - name: w1
            type: ping
            from: [h1, h9]
            to: h1
        """, "workloads[0].from[1]", 10, "unknown host 'h9'"),
    case("workload-unknown-slice", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
        workloads:
          - name: w1
            type: ping
            from: [h1]
            to: h1
            slice: gold
        """, "workloads[0].slice", 12, "unknown slice 'gold'"),
    case("workload-unknown-target", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
        workloads:
          - name: w1
            type: emr
            from: [h1]
            to: emr
        """, "workloads[0].to", 11, "'emr' is neither a host nor a service"),
    case("probe-unknown-node", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
        probes:
          - name: p1
            from: [h1]
            to:
              - ghost
        """, "probes[0].to[0]", 11, "unknown node or service 'ghost'"),
    case("fault-without-target", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
        faults:
          - name: f1
            type: link-down
            at: 2s
        """, "faults[0].target", 8, "a link-down fault needs a target"),
    case("fault-unknown-link-ref", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
        faults:
          - name: f1
            type: impair
            target: h1:h2
        """, "faults[0].target", 10, "unknown link 'h1:h2'"),
    case("fault-unknown-node", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
        faults:
          - {name: f1, type: node-down, target: h2}
        """, "faults[0].target", 8, "unknown node 'h2'"),
]

# --- slice budgets that the configured link delays alone already break -------------------
BUDGET_NODES = """\
        name: t
        nodes:
          - {name: dc, kind: switch}
          - {name: emr, kind: server, services: [emr]}
          - {name: edge, kind: switch}
          - {name: tab, kind: host}
"""  # indented as the case texts it starts (the whole text is dedented at once)

CASES += [
    case("slice-budget-below-path-delay", BUDGET_NODES + """\
        links:
          - {endpoints: [emr, dc]}
          - {endpoints: [edge, dc], delay: 8ms}
          - {endpoints: [tab, edge], delay: 4ms}
        slices:
          - name: rounds
            members: [tab]
            services: [emr]
            latency_budget: 10ms
        """, "slices[0].latency_budget", 15,
         "tab <-> emr (emr): 12 ms configured one-way delay along tab - edge - dc - emr exceeds "
         "the slice's 10 ms latency budget"),
    case("slice-5qi-budget-below-path-delay", BUDGET_NODES + """\
        links:
          - {endpoints: [emr, dc], delay: 1ms}
          - {endpoints: [edge, dc], delay: 3ms}
          - {endpoints: [tab, edge], delay: 2ms}
        slices:
          - name: control
            fiveqi: 85
            members: [tab]
            services: [emr]
        """, "slices[0].fiveqi", 13, "6 ms configured one-way delay along tab - edge - dc - emr exceeds "
                                     "the slice's 5 ms budget (5QI 85's packet delay budget)"),
    case("slice-budget-on-the-fewest-hops-not-the-fastest-path", BUDGET_NODES + """\
          - {name: ring, kind: switch}
        links:
          - {endpoints: [emr, dc]}
          - {endpoints: [tab, edge]}
          - {endpoints: [edge, dc], delay: 20ms}
          - {endpoints: [edge, ring], delay: 1ms}
          - {endpoints: [ring, dc], delay: 1ms}
        slices:
          - name: rounds
            members: [tab]
            services: [emr]
            latency_budget: 10ms
        """, "slices[0].latency_budget", 18, "20 ms configured one-way delay along tab - edge - dc - emr"),
    case("slice-budget-broken-in-one-direction", BUDGET_NODES + """\
        links:
          - {endpoints: [emr, dc]}
          - {endpoints: [edge, dc], delay: 2ms, b_to_a: {delay: 15ms}}
          - {endpoints: [tab, edge]}
        slices:
          - name: rounds
            members: [tab]
            services: ["emr:emr"]
            latency_budget: 10ms
        """, "slices[0].latency_budget", 15, "15 ms configured one-way delay along emr - dc - edge - tab"),
]
