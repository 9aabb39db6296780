"""Bad topology files, stage 1-2: YAML syntax and the schema. Each entry: (id, YAML text, field, line, message fragment).
"""
from __future__ import annotations

from bad_case import case


CASES = [
    # --- stage 1: YAML syntax / shape --------------------------------------------
    case("yaml-syntax-unclosed-flow-map", """\
        name: t
        nodes:
          - {name: sw, kind: switch
          - {name: h1, kind: server}
        """, "", 4, "YAML syntax"),
    case("yaml-duplicate-key", """\
        name: t
        nodes: []
        name: u
        """, "", 3, "duplicate key"),
    case("top-level-is-a-list", """\
        - name: t
        - nodes: []
        """, "", 1, "expected a mapping at the top level"),
    case("empty-file", """\
        # nothing but a comment
        """, "", 1, "expected a mapping at the top level"),
    # --- stage 2: schema ----------------------------------------------------------
    case("unknown-key-with-hint", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - endpoints: [h1, sw]
            delya: 5ms
        """, "links[0].delya", 7, "unknown key; did you mean 'delay'?"),
    case("unknown-top-level-key-with-hint", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
        link:
          - {endpoints: [sw, sw]}
        """, "link", 4, "did you mean 'links'?"),
    case("wrong-type-cpus", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - name: h1
            kind: server
            cpus: many
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[1].cpus", 6, "valid number"),
    case("wrong-type-nodes-not-a-list", """\
        name: t
        nodes:
          sw: {kind: switch}
        """, "nodes", 2, "valid list"),
    case("missing-nodes", """\
        # yaml-language-server: $schema=../schemas/topology.schema.json
        name: t
        links: []
        """, "nodes", 1, "required field is missing"),
    case("missing-name", """\
        nodes:
          - {name: sw, kind: switch}
        """, "name", 1, "required field is missing"),
    case("missing-node-kind", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1}
        """, "nodes[1].kind", 4, "required field is missing"),
    case("empty-node-list", """\
        name: t
        nodes: []
        """, "nodes", 2, "at least 1 item"),
    case("bad-topology-name-pattern", """\
        name: Xiangtan Alliance
        nodes:
          - {name: sw, kind: switch}
        """, "name", 1, "should match pattern"),
    case("bad-node-name-pattern", """\
        name: t
        nodes:
          - {name: Core_SW, kind: switch}
        """, "nodes[0].name", 3, "'Core_SW'"),
    case("bad-site-type", """\
        name: t
        sites:
          - {name: dc, type: hospital}
        nodes:
          - {name: sw, kind: switch, site: dc}
        """, "sites[0].type", 3, "'datacentre'"),
    case("bad-node-kind", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: r1, kind: router}
        """, "nodes[1].kind", 4, "Input should be"),
    case("bad-rate-unit", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
          - {name: h2, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - endpoints: [h2, sw]
            bw: 10 parsecs
        """, "links[1].bw", 9, "expected a rate like '100Mbit'"),
    case("bad-duration-unit", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - endpoints: [h1, sw]
            delay: 5 fortnights
        """, "links[0].delay", 7, "expected a duration like '10ms'"),
    case("bad-percent-unit", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - endpoints: [h1, sw]
            loss: 1 percent
        """, "links[0].loss", 7, "expected a percentage like '1%'"),
    case("loss-above-100-percent", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - endpoints: [h1, sw]
            loss: 150%
        """, "links[0].loss", 7, "between 0% and 100%"),
    case("negative-rate", """\
        name: t
        defaults:
          link:
            bw: -5
        nodes:
          - {name: sw, kind: switch}
        """, "defaults.link.bw", 4, "rate must be positive"),
    case("mtu-too-large", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - endpoints: [h1, sw]
            mtu: 10000
        """, "links[0].mtu", 7, "less than or equal to 9000"),
    case("mtu-too-small-in-site-uplink", """\
        name: t
        sites:
          - name: clinic-1
            type: clinic
            uplink: {mtu: 20}
        nodes:
          - {name: sw, kind: switch}
        """, "sites[0].uplink.mtu", 5, "greater than or equal to 68"),
    case("link-with-three-endpoints", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw, sw]}
        """, "links[0].endpoints", 6, "at most 2 items"),
    case("bad-mac-format", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - name: h1
            kind: server
            mac: "02:00:00:00:00"
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[1].mac", 6, "should match pattern"),
    case("bad-ip", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, ip: 10.77.0.300}
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[1].ip", 4, "IPv4 interface"),
    case("unknown-service-name", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - name: h1
            kind: server
            services:
              - emr
              - ftp
        links:
          - {endpoints: [h1, sw]}
        """, "nodes[1].services[1]", 8, "unknown service 'ftp'"),
    case("bad-sd", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
        slices:
          - name: s1
            sd: xyz
        """, "slices[0].sd", 6, "should match pattern"),
    case("bad-supi", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
        ran:
          ues:
            - {ue: u1, gnb: g1, supi: "12345"}
        """, "ran.ues[0].supi", 6, "should match pattern"),
    case("controller-remote-malformed", """\
        name: t
        controller:
          remote: localhost
        nodes:
          - {name: sw, kind: switch}
        """, "controller.remote", 3, "should match pattern"),
    case("workload-missing-from", """\
        name: t
        nodes:
          - {name: sw, kind: switch}
        workloads:
          - {name: w1, type: ping, to: sw}
        """, "workloads[0].from", 5, "required field is missing"),
]
