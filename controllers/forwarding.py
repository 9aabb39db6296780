"""Proactive forwarding: install the testbed's precomputed plan on every switch, as it is.

The plan (JSON, path in $TESTBED_PLAN) lists each switch's rules by datapath id:
plain shortest-path forwarding for a topology without slices, the slicing rules
(testbed/slicing/flows.py) for one with slices. See controllers/plan_app.py for
how it is installed, kept in sync with plan changes, and reported as ready.
No packet-ins are requested: anything the plan does not allow is dropped.
"""
from __future__ import annotations

from controllers.plan_app import PlanApp


class PlanForwarding(PlanApp):
    """Installs whatever plan the testbed computed."""
