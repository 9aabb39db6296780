"""Workload types as a registry: one module per type (defining TYPE, see base.py), listed once in MODULES.

A `workloads:` entry names its type; this package checks the type exists and
its own keys are valid (located as file:line, like every topology problem),
runs it on a live testbed, and scores it against the entry's SLO (slo.py).
"""
from __future__ import annotations

import difflib
import importlib

from pydantic import ValidationError

from testbed.errors import Problem
from testbed.topology.model import Topology, Workload
from testbed.workloads.base import Measurement, WorkloadType

MODULES = ("reachability", "ping", "emr", "iot", "vdi", "video", "iperf", "dicom", "hl7")

_TYPES: dict[str, WorkloadType] = {}


def register(t: WorkloadType) -> WorkloadType:
    _TYPES[t.name] = t
    return t


def unregister(name: str) -> None:
    _TYPES.pop(name, None)


for _m in MODULES:
    register(importlib.import_module(f"testbed.workloads.{_m}").TYPE)


def get(name: str) -> WorkloadType:
    """The type's implementation (validate() has already refused unknown types)."""
    return _TYPES[name]


def names() -> list[str]:
    return list(_TYPES)


def params_of(w: Workload):
    """The entry's own keys, validated by its type (call after validate())."""
    t = _TYPES[w.type]
    return t.Params.model_validate(w.params)


def validate(topo: Topology) -> list[Problem]:
    """Every workload entry: a known type, and only keys its type understands, with valid values."""
    out: list[Problem] = []
    common = {f.alias or n for n, f in Workload.model_fields.items()}
    for i, w in enumerate(topo.workloads):
        if w.type not in _TYPES:
            close = difflib.get_close_matches(w.type, names(), n=1)
            out.append(topo.problem(("workloads", i, "type"), f"unknown workload type {w.type!r}"
                                    + (f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(names())}")))
            continue
        try:
            _TYPES[w.type].Params.model_validate(w.params)
        except ValidationError as exc:
            own = set(_TYPES[w.type].Params.model_fields)
            for err in exc.errors(include_url=False):
                if err["type"] == "extra_forbidden":
                    key = str(err["loc"][-1])
                    close = difflib.get_close_matches(key, sorted((own | common) - {key}), n=1)
                    msg = f"unknown key for a {w.type} workload" + (f"; did you mean '{close[0]}'?" if close else "")
                else:
                    msg = err["msg"].removeprefix("Value error, ")
                out.append(topo.problem(("workloads", i, *err["loc"]), msg))
    return out + granted(topo)


def granted(topo: Topology) -> list[Problem]:
    """With slices, a workload's traffic must be what its slice grants: every source a member of the
    workload's `slice` (its flows are judged against that slice's budget), and every source -> target
    pair granted by some slice of the source (else the slicing drops it and the run reports 100% loss).
    Names the file's own mistakes have already been reported for (unknown hosts, slices) are skipped."""
    if not topo.slices or topo.controller.app not in ("auto", "slicing"):
        return []
    from testbed.slicing.policy import compile_policy
    from testbed.workloads.targets import resolve

    hosts = {n.name for n in topo.hosts}
    policy = compile_policy(topo)
    pairs = set(policy.pairs())
    out: list[Problem] = []
    for i, w in enumerate(topo.workloads):
        for j, src in enumerate(w.src):
            if src not in hosts:
                continue
            if w.slice in policy.members and src not in policy.members[w.slice]:
                out.append(topo.problem(("workloads", i, "from", j), f"{src!r} is not a member of slice {w.slice!r}"))
                continue
            targets = [d for d in resolve(topo, w.dst) if d != src]
            if targets and all((src, d) not in pairs for d in targets):  # some target granted: it runs
                out.append(topo.problem(("workloads", i, "to"), f"no slice of {src!r} grants it {w.dst!r}"
                                        + (f" (on {', '.join(targets[:3])})" if targets != [w.dst] else "")
                                        + ": the slicing would drop this workload's traffic"))
    return out


def extend_schema(schema: dict) -> dict:
    """Add the registered types (and each one's own keys) to the topology schema's Workload."""
    wl = schema["$defs"]["Workload"]
    wl["properties"]["type"] = {"type": "string", "enum": names(), "description": wl["properties"]["type"].get(
        "description", "")}
    branches = []
    for t in _TYPES.values():
        ps = t.Params.model_json_schema()
        branches.append({"if": {"properties": {"type": {"const": t.name}}},
                         "then": {"properties": ps.get("properties", {})}})
    wl["allOf"] = branches
    return schema


__all__ = ["MODULES", "Measurement", "WorkloadType", "extend_schema", "get", "names", "params_of",
           "register", "unregister", "validate"]
