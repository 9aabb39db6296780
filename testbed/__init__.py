"""Emulate a 5G medical alliance network on one Linux machine and measure it.

The public API is small on purpose: load a topology file, build it as a context
manager, run the checks. The CLI (`testbed`) is a thin layer over the same calls.
"""
from testbed.errors import TestbedError, TopologyError
from testbed.topology.loader import load
from testbed.topology.model import Topology

__all__ = ["TestbedError", "TopologyError", "Topology", "load", "Testbed"]


def __getattr__(name: str):
    # Testbed pulls in Mininet; keep `import testbed` cheap for validate/schema users.
    if name == "Testbed":
        from testbed.engine.testbed import Testbed

        return Testbed
    raise AttributeError(name)
