"""Bad topology files: each must fail to load with a problem naming the exact line,
field path and cause, and the CLI must print `FILE:LINE field` and exit 2.

Every YAML text below starts at line 1 (dedented, no leading blank line), so the
line numbers in the expectations can be checked by counting.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from testbed.cli.main import cli
from testbed.errors import Problem, TopologyError
from testbed.topology.loader import load


def case(id_: str, text: str, field: str, line: int | None, fragment: str):
    return pytest.param(text, field, line, fragment, id=id_)


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


def _load_problems(path: Path) -> list[Problem]:
    with pytest.raises(TopologyError) as info:
        load(path)
    err = info.value
    assert err.exit_code == 2
    assert err.problems, "TopologyError without problems"
    return err.problems


@pytest.mark.parametrize(("text", "field", "line", "fragment"), CASES)
def test_bad_topology_is_located(write_yaml, text: str, field: str, line: int, fragment: str) -> None:
    path = write_yaml(text)
    problems = _load_problems(path)
    assert all(p.file == str(path) for p in problems)
    matching = [p for p in problems if p.field == field and p.line == line and fragment in p.message]
    assert matching, f"no problem ({field!r}, line {line}, {fragment!r}) in:\n" + "\n".join(map(str, problems))


def test_there_are_many_distinct_bad_files() -> None:
    texts = [c.values[0] for c in CASES]
    assert len(set(texts)) == len(texts) >= 25


def test_problem_str_is_file_line_field_message(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch, services: [emr]}
        """)
    (p,) = _load_problems(path)
    assert str(p) == f"{path}:3 nodes[0].services: a switch does not offer services"


def test_all_schema_errors_reported_sorted_by_line(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - name: h1
            kind: server
            cpus: -1
        links:
          - endpoints: [h1, sw]
            bw: fast
            loss: 200%
        slices:
          - {name: s1, sd: "12"}
        controller: {remote: "nope"}
        """)
    problems = _load_problems(path)
    assert [(p.line, p.field) for p in problems] == [
        (6, "nodes[1].cpus"),
        (9, "links[0].bw"),
        (10, "links[0].loss"),
        (12, "slices[0].sd"),
        (13, "controller.remote"),
    ]


def test_all_graph_errors_reported(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        sites:
          - {name: dc, type: datacentre}
        nodes:
          - {name: sw, kind: switch, site: dc}
          - {name: h1, kind: server, site: dcc, ip: 10.77.0.10}
          - {name: h2, kind: server, ip: 10.77.0.10}
          - {name: h2, kind: vdi}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, sw]}
          - {endpoints: [sw, ghost]}
        slices:
          - {name: s1, fiveqi: 4242}
        workloads:
          - {name: w1, type: ping, from: [h1], to: nowhere}
        """)
    problems = _load_problems(path)
    located = sorted((p.line, p.field) for p in problems)
    assert located == [
        (6, "nodes[1].site"),
        (7, "nodes[2].ip"),
        (8, "nodes[3].name"),
        (12, "links[2].endpoints[1]"),
        (14, "slices[0].fiveqi"),
        (16, "workloads[0].to"),
    ], "\n".join(map(str, problems))


def test_missing_file_is_a_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    problems = _load_problems(path)
    assert len(problems) == 1
    (p,) = problems
    assert p.file == str(path) and p.line is None and p.field == ""
    assert "cannot read file" in p.message and "No such file" in p.message
    assert str(p).startswith(str(path))


def test_directory_instead_of_file_is_a_clear_problem(tmp_path: Path) -> None:
    (p,) = _load_problems(tmp_path)
    assert "cannot read file" in p.message


def test_non_utf8_file_is_a_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: t\ndescription: Xiangtan Shi\n".encode("latin-1") + b"\xff\xfe\n")
    (p,) = _load_problems(path)
    assert "utf-8" in p.message.lower()


def test_infinite_rate_is_a_problem_not_a_crash(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        defaults:
          link: {bw: .inf}
        nodes:
          - {name: sw, kind: switch}
        """)
    problems = _load_problems(path)
    assert any(p.field == "defaults.link.bw" and p.line == 3 for p in problems)


def test_error_in_merged_key_is_located(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - &sw {name: sw, kind: switch, site: nowhere}
          - {<<: *sw, name: sw2}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [sw2, sw]}
        """)
    problems = _load_problems(path)
    assert any(p.field == "nodes[1].site" and p.line == 4 for p in problems)


def test_unlinked_first_node_is_one_problem_not_a_cascade(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: lonely, kind: server}
          - {name: sw, kind: switch}
          - {name: h1, kind: server}
        links:
          - {endpoints: [h1, sw]}
        """)
    problems = _load_problems(path)
    assert [(p.line, p.field) for p in problems] == [(3, "nodes[0].name")], "\n".join(map(str, problems))


def test_explicit_mac_colliding_with_generated_mac(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, mac: "02:7b:00:00:00:02"}
          - {name: h2, kind: server}
        links:
          - {endpoints: [h1, sw]}
          - {endpoints: [h2, sw]}
        """)
    try:
        topo = load(path)
    except TopologyError:
        return  # rejecting the file is also a fix
    from testbed.topology.resolve import assign_macs

    macs = assign_macs(topo)
    assert len(set(macs.values())) == len(macs), macs


def test_broadcast_mac_for_a_host_is_rejected(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, mac: "ff:ff:ff:ff:ff:ff"}
        links:
          - {endpoints: [h1, sw]}
        """)
    problems = _load_problems(path)
    assert any(p.field == "nodes[1].mac" and p.line == 4 for p in problems)


def test_negative_memory_is_rejected(write_yaml) -> None:
    path = write_yaml("""\
        name: t
        nodes:
          - {name: sw, kind: switch}
          - {name: h1, kind: server, memory: -5}
        links:
          - {endpoints: [h1, sw]}
        """)
    problems = _load_problems(path)
    assert any(p.field == "nodes[1].memory" and p.line == 4 for p in problems)


# --- the CLI -------------------------------------------------------------------------


def test_cli_validate_bad_file_prints_file_line_field(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("name: t\nnodes:\n  - {name: sw, kind: switch}\n  - {name: h1, kind: server}\n"
                                "links:\n  - {endpoints: [h1, sw], bw: 10 parsecs}\n")
    result = CliRunner().invoke(cli, ["validate", "bad.yaml"])
    assert result.exit_code == 2, result.output
    assert "bad.yaml:6" in result.stderr
    assert "links[0].bw" in result.stderr
    assert "expected a rate" in result.stderr
    assert "1 problem(s)" in result.stderr


def test_cli_validate_reports_every_file(tmp_path: Path, monkeypatch, minimal_topology_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("name: t\nnodes: []\n")
    result = CliRunner().invoke(cli, ["validate", "bad.yaml", str(minimal_topology_path)])
    assert result.exit_code == 2
    assert "bad.yaml:2" in result.stderr and "nodes" in result.stderr
    assert "minimal.yaml" in result.stdout


def test_cli_validate_missing_file_exits_2(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "missing.yaml"])
    assert result.exit_code == 2
    assert "missing.yaml" in result.stderr and "cannot read file" in result.stderr


def test_cli_problem_lines_are_never_wrapped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path("alliance-" + "x" * 90, "site-configs-" + "y" * 90, "more-" + "z" * 90)
    folder.mkdir(parents=True)
    bad = folder / "bad.yaml"
    bad.write_text("name: t\nnodes: []\n")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2 nodes: List should have at least 1 item" in result.stderr.splitlines()[0]


def test_cli_prints_user_text_that_looks_like_markup(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text('name: t\ndefaults:\n  link: {bw: "[/]"}\nnodes:\n  - {name: sw, kind: switch}\n')
    result = CliRunner().invoke(cli, ["validate", "bad.yaml"])
    assert result.exit_code == 2, result.output
    assert "bad.yaml:3" in result.stderr and "got '[/]'" in result.stderr


def test_cli_shows_the_bad_dict_key_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("name: t\ndefaults:\n  kinds: {router: {cpus: 1}}\nnodes:\n  - {name: sw, kind: switch}\n")
    result = CliRunner().invoke(cli, ["validate", "bad.yaml"])
    assert result.exit_code == 2
    line = result.stderr.splitlines()[0]
    assert line.startswith("bad.yaml:3 defaults.kinds.router") and not line.startswith("bad.yaml:3 defaults.kinds.router.:")
