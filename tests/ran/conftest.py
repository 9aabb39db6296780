"""RAN plan fixtures: the two shipped topologies' plans, and a small alliance with a MEC UPF at a clinic."""
from __future__ import annotations

import textwrap

import pytest

from testbed.ran.plan import RanPlan, ran_plan
from testbed.topology.loader import parse_text
from testbed.topology.model import Topology

MEC_TOPOLOGY = """
name: mec-alliance
defaults: {addressing: {pool: 10.77.0.0/24}}
sites:
  - {name: dc, type: datacentre}
  - {name: clinic-1, type: clinic}
  - {name: clinic-2, type: clinic}
nodes:
  - {name: core, kind: switch, site: dc}
  - {name: emr, kind: server, site: dc, services: [emr]}
  - {name: upf-central, kind: upf, site: dc}
  - {name: sw-1, kind: switch, site: clinic-1}
  - {name: gnb-1, kind: gnb, site: clinic-1}
  - {name: upf-edge, kind: upf, site: clinic-1}
  - {name: cache-1, kind: mec, site: clinic-1, services: [mec-cache]}
  - {name: ue-1, kind: ue, site: clinic-1}
  - {name: sw-2, kind: switch, site: clinic-2}
  - {name: gnb-2, kind: gnb, site: clinic-2}
  - {name: ue-2, kind: ue, site: clinic-2}
  %(extra_nodes)s
links:
  - {endpoints: [emr, core]}
  - {endpoints: [upf-central, core]}
  - {endpoints: [sw-1, core]}
  - {endpoints: [sw-2, core]}
  - {endpoints: [gnb-1, sw-1]}
  - {endpoints: [upf-edge, sw-1]}
  - {endpoints: [cache-1, sw-1]}
  - {endpoints: [ue-1, sw-1]}
  - {endpoints: [gnb-2, sw-2]}
  - {endpoints: [ue-2, sw-2]}
  %(extra_links)s
slices:
  - {name: clinical, sst: 1, sd: "000001", fiveqi: 7, members: [ue-1, ue-2], services: [emr], rate: 50Mbit}
  - {name: imaging, sst: 1, sd: "000002", fiveqi: 8, members: [ue-1, ue-2], services: [mec-cache]}
%(ran)s
"""


def mec_topology(extra_nodes: str = "", extra_links: str = "", ran: str = "") -> Topology:
    text = MEC_TOPOLOGY % {"extra_nodes": extra_nodes, "extra_links": extra_links, "ran": ran}
    return parse_text(textwrap.dedent(text), "mec-alliance.yaml")


@pytest.fixture(scope="session")
def reference_plan(reference: Topology) -> RanPlan:
    return ran_plan(reference)


@pytest.fixture(scope="session")
def central_plan(reference: Topology) -> RanPlan:
    """The reference plan with every session on the central UPF: what Open5GS's UPF selection can express
    (by DNN or by cell, not the reference's MEC binding of one slice at some sites)."""
    from testbed.ran.upfs import UpfBinding

    return ran_plan(reference, upfs=[UpfBinding("upf-01")])


@pytest.fixture(scope="session")
def minimal_plan(minimal: Topology) -> RanPlan:
    return ran_plan(minimal)


@pytest.fixture(scope="session")
def mec() -> Topology:
    return mec_topology()
