"""Node kinds as a registry: one module per kind, each defining `KIND`, listed once in BUILTIN.

Adding a kind means adding its module here and its name to BUILTIN (or calling
`register()` from a plug-in before the topology model is imported); the model's
`kind:` values, the JSON Schema, validation, the engine and the slice policy all
follow from the registry (see base.py for what a kind declares).
"""
from __future__ import annotations

import importlib

from testbed.kinds.base import Daemon, InfraGrant, Kind

BUILTIN = ("switch", "server", "vdi", "mec", "upf", "gnb", "ue", "core", "host")

_REGISTRY: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add a kind (a plug-in's, or a built-in's); a name can be registered once."""
    if kind.name in _REGISTRY and _REGISTRY[kind.name] != kind:
        raise ValueError(f"node kind {kind.name!r} is already registered")
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests that register a temporary one clean up with this)."""
    _REGISTRY.pop(name, None)


for _name in BUILTIN:
    register(importlib.import_module(f"testbed.kinds.{_name}").KIND)


def get(name: str) -> Kind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown node kind {name!r}; known: {', '.join(names())}") from None


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def host_kinds() -> tuple[str, ...]:
    return tuple(k.name for k in _REGISTRY.values() if k.host)


def service_kinds() -> tuple[str, ...]:
    return tuple(k.name for k in _REGISTRY.values() if k.offers_services)


def is_switch(name: str) -> bool:
    return get(name).switch


__all__ = ["BUILTIN", "Daemon", "InfraGrant", "Kind", "get", "host_kinds", "is_switch", "names", "register",
           "service_kinds", "unregister"]
