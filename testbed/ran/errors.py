"""The RAN layer's error: a topology whose 5G part cannot be planned (exit 2, located in the file)."""
from __future__ import annotations

from testbed.errors import TopologyError


class RanPlanError(TopologyError):
    """The file's 5G part cannot be planned; every problem is located in the file where possible."""
