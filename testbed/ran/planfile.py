"""A RanPlan as plain JSON and back: how the core process receives its view of the plan.

The engine computes the plan once (testbed.ran.plan) and testbed.ran.agents
writes it into the core's config; the core rebuilds the very same dataclasses,
so its admission (testbed.ran.core) decides on exactly what the prober expects.
Decoding is driven by the dataclasses' own type hints, so a field added to the
plan travels without touching this module.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from testbed.ran.plan import RanPlan

FORMAT = 1


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (IPv4Address, IPv4Network)):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [to_jsonable(v) for v in value]
    return value


def plan_to_dict(plan: RanPlan) -> dict[str, Any]:
    return {"format": FORMAT, **to_jsonable(plan)}


def plan_from_dict(doc: dict[str, Any]) -> RanPlan:
    if doc.get("format") != FORMAT:
        raise ValueError(f"plan format {doc.get('format')!r}, expected {FORMAT}")
    return _build(RanPlan, {k: v for k, v in doc.items() if k != "format"})


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _build(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _build(args[0], value)
    if origin is tuple:
        args = typing.get_args(tp)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if item is None:
            return tuple(_build(a, v) for a, v in zip(args, value))
        return tuple(_build(item, v) for v in value)
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(tp)
                     if f.name in value})
    if tp in (IPv4Address, IPv4Network):
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not an address in dotted form")
        return tp(value)
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ValueError(f"{value!r} is not {tp.__name__}")
        return value
    return value
