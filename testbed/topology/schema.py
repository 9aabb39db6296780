"""The JSON Schema of topology files, generated from the model (never hand-written).

Shipped as schemas/topology.schema.json; topology files reference it in a
`# yaml-language-server: $schema=` modeline so editors validate while typing.
A unit test fails if the shipped file is out of date.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from testbed.topology.templates import TopologyFile

SCHEMA_ID = "https://github.com/medalliance/testbed/schemas/topology.schema.json"


def schema(extend: Callable[[dict], dict] | None = None) -> dict:
    """The file's schema (the model plus site templates); `extend` lets the layers above add what they own
    (workload types)."""
    s = TopologyFile.model_json_schema(by_alias=True, mode="validation")
    if extend is not None:
        s = extend(s)
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["$id"] = SCHEMA_ID
    s["title"] = "testbed topology"
    return s


def schema_json(extend: Callable[[dict], dict] | None = None) -> str:
    return json.dumps(schema(extend), indent=2, sort_keys=False) + "\n"
