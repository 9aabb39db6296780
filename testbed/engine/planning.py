"""Which OpenFlow plan a run's controller gets, from the topology and its layout.

The one place the engine asks "what rules should the switches hold?", so the
slicing work can change the answer without touching the build code.
"""
from __future__ import annotations

from testbed.engine.layout import Layout
from testbed.engine.plan import forwarding_plan
from testbed.topology.model import Topology


def controller_plan(topo: Topology, layout: Layout) -> dict:
    """The JSON document the controller app installs ({"switches": {dpid: [flow, ...]}})."""
    return {"switches": forwarding_plan(layout.wiring())}
