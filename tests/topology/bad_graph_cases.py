"""Bad topology files, stage 3: whole-graph checks of the network itself (names, sites, links,
addresses, services). Each entry: (id, YAML text, field, line, message fragment).

What the file asks of that network (slices, RAN, workloads, probes, faults, latency budgets)
is in bad_policy_cases.py; test_bad_topologies.py runs both tables.
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
]
