"""Node runtimes behind one interface (base.Runtime): a new runtime is one module plus a line in RUNTIMES."""
from __future__ import annotations

from testbed.engine.runtimes.base import Runtime
from testbed.engine.runtimes.docker import DockerRuntime
from testbed.engine.runtimes.namespace import NamespaceRuntime

RUNTIMES: dict[str, type] = {"namespace": NamespaceRuntime, "docker": DockerRuntime}


def new(name: str) -> Runtime:
    """A fresh runtime object (one per run: it holds what it started)."""
    try:
        return RUNTIMES[name]()
    except KeyError:
        raise KeyError(f"unknown node runtime {name!r}; known: {', '.join(RUNTIMES)}") from None


def all_runtimes() -> list[Runtime]:
    return [cls() for cls in RUNTIMES.values()]


__all__ = ["RUNTIMES", "Runtime", "all_runtimes", "new"]
