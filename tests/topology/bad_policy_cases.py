"""Bad topology files, stage 3: whole-graph checks of what the file asks of its network (slices,
RAN bindings, workloads, probes, faults, latency budgets the link delays already break).
Each entry: (id, YAML text, field, line, message fragment).

The network's own checks (names, sites, links, addresses, services) are in bad_graph_cases.py.
"""
from __future__ import annotations

from bad_case import case


CASES = [
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

# --- desktop failover, the Table 1 arms and congestion: each kind's own keys ---------------
DRILL_NODES = """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: vdi-01, kind: vdi, services: [vdi]}
          - {name: vdi-02, kind: vdi, services: [vdi], spare: true}
          - {name: pc, kind: host}
        links:
          - {endpoints: [vdi-01, sw]}
          - {endpoints: [vdi-02, sw]}
          - {endpoints: [pc, sw]}
"""  # indented as the case texts it starts (the whole text is dedented at once)

CASES += [
    case("spare-without-services", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: host, spare: true}
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[1].spare", 4, "list the services it offers"),
    case("spare-of-nothing", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - name: v2
            kind: vdi
            services: [vdi]
            spare: true
        links:
          - {endpoints: [v2, sw]}
        """, "nodes[1].spare", 7, "nothing to stand in for"),
    case("cloud-arm-without-spare", DRILL_NODES.replace("spare: true", "spare: false") + """\
        faults:
          - {name: f1, type: node-down, target: vdi-01, desktop: cloud}
        """, "faults[0].target", 12, "no spare stands in for 'vdi-01'"),
    case("traditional-arm-without-repair", DRILL_NODES + """\
        faults:
          - name: f1
            type: node-down
            target: pc
            desktop: traditional
        """, "faults[0].repair", 12, "needs the workstation's repair time"),
    case("desktop-arm-not-node-down", DRILL_NODES + """\
        faults:
          - name: f1
            type: link-down
            target: pc:sw
            desktop: cloud
        """, "faults[0].desktop", 15, "a desktop-failure arm is a node-down fault"),
    case("repair-without-traditional-arm", DRILL_NODES + """\
        faults:
          - name: f1
            type: node-down
            target: pc
            repair: 4h
        """, "faults[0].repair", 15, "only with desktop: traditional"),
    case("congestion-without-rate", DRILL_NODES + """\
        faults:
          - {name: f1, type: congestion, from: pc, to: vdi-01}
        """, "faults[0].rate", 12, "needs `rate`"),
    case("congestion-unbounded-rate", DRILL_NODES + """\
        faults:
          - name: f1
            type: congestion
            from: pc
            to: vdi-01
            rate: 5Gbit
        """, "faults[0].rate", 16, "at most 1Gbit"),
    case("congestion-from-a-switch", DRILL_NODES + """\
        faults:
          - name: f1
            type: congestion
            from: sw
            to: vdi-01
            rate: 10Mbit
        """, "faults[0].from", 14, "'sw' is not one"),
    case("congestion-to-no-iperf", DRILL_NODES + """\
        faults:
          - {name: f1, type: congestion, from: pc, to: vdi-01, rate: 10Mbit}
        """, "faults[0].to", 12, "nothing at 'vdi-01' offers iperf"),
    case("congestion-keys-on-another-kind", DRILL_NODES + """\
        faults:
          - name: f1
            type: node-down
            target: pc
            rate: 10Mbit
        """, "faults[0].rate", 15, "belongs to a congestion fault"),
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
