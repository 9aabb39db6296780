"""A workload the slicing would drop is a mistake in the file, reported with its line (QA found both passing
`validate`: one credited to a slice its source is not on, one to a service no slice of its source grants)."""
from __future__ import annotations

import pytest

from testbed import workloads
from testbed.errors import TopologyError
from testbed.runner import check_workloads
from testbed.topology.loader import parse_text

BASE = """
name: grants
defaults: {addressing: {pool: 10.77.0.0/24}}
nodes:
  - {name: core, kind: switch}
  - {name: emr, kind: server, services: [emr]}
  - {name: pacs, kind: server, services: [pacs]}
  - {name: tablet, kind: host}
  - {name: kiosk, kind: host}
links:
  - {endpoints: [emr, core]}
  - {endpoints: [pacs, core]}
  - {endpoints: [tablet, core]}
  - {endpoints: [kiosk, core]}
slices:
  - {name: clinical, sst: 1, fiveqi: 7, members: [tablet], services: [emr, pacs]}
  - {name: payments, sst: 3, fiveqi: 9, members: [kiosk], services: [emr]}
workloads:
"""


def _problems(workload_line: str, controller: str = "") -> list:
    topo = parse_text(BASE + workload_line + controller, "grants.yaml")
    return workloads.validate(topo)


def test_granted_workloads_pass():
    assert _problems("  - {name: ok, type: ping, from: [tablet], to: pacs, slice: clinical}\n"
                     "  - {name: ok2, type: ping, from: [kiosk], to: emr}\n") == []


def test_a_source_not_on_the_workloads_slice_is_named_with_its_line():
    [p] = _problems("  - {name: wrong-slice, type: ping, from: [tablet], to: emr, slice: payments}\n")
    assert p.line == 19 and p.field == "workloads[0].from[0]" and "not a member of slice 'payments'" in p.message


def test_a_service_no_slice_of_the_source_grants_is_named():
    [p] = _problems("  - {name: kiosk-pacs, type: ping, from: [kiosk], to: pacs}\n")
    assert p.field == "workloads[0].to" and "no slice of 'kiosk' grants it 'pacs'" in p.message
    with pytest.raises(TopologyError):
        check_workloads(parse_text(BASE + "  - {name: kiosk-pacs, type: ping, from: [kiosk], to: pacs}\n", "g.yaml"))


def test_without_the_slicing_app_nothing_is_dropped_so_nothing_is_refused():
    assert _problems("  - {name: kiosk-pacs, type: ping, from: [kiosk], to: pacs}\n",
                     "controller: {app: allow-all}\n") == []
