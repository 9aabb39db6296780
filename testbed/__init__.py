"""Emulate a 5G medical alliance network on one Linux machine and measure it.

The public API is small on purpose: load a topology file, build it as a context
manager, run the checks. The CLI (`testbed`) is a thin layer over the same calls.
Imports are lazy: helper processes (link relays, traffic programs) import
submodules of this package and must not pay for pydantic or Mininet.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TestbedError": "testbed.errors",
    "TopologyError": "testbed.errors",
    "Topology": "testbed.topology.model",
    "load": "testbed.topology.loader",
    "Testbed": "testbed.engine.testbed",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'testbed' has no attribute {name!r}")
