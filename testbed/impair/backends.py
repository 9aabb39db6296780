"""Choosing a backend: the kernel's netem where it exists, else the userspace relay."""
from __future__ import annotations

import os

from testbed.impair.base import ImpairBackend, ImpairError
from testbed.impair.netem import NetemBackend, netem_available
from testbed.impair.userspace import UserspaceBackend

BACKENDS = ("auto", "netem", "userspace")
BACKEND_ENV = "TESTBED_IMPAIRMENT"  # auto | netem | userspace


def select_backend(prefer: str = "auto") -> tuple[ImpairBackend, str]:
    """(backend, reason): the reason is meant for `testbed doctor` and reports.

    'auto' picks netem when the kernel has it (no userspace CPU cost) and the
    relay otherwise; asking for 'netem' where it is missing is an error rather
    than a silent downgrade, so a run never measures something it did not ask for.
    """
    if prefer not in BACKENDS:
        raise ValueError(f"impairment backend must be one of {', '.join(BACKENDS)}, got {prefer!r}")
    if prefer == "userspace":
        return UserspaceBackend(), "userspace relay requested"
    if netem_available():
        return NetemBackend(), "kernel has sch_netem"
    if prefer == "netem":
        raise ImpairError("netem backend requested but this kernel has no sch_netem "
                          "(use 'auto' or 'userspace')")
    return UserspaceBackend(), "kernel has no sch_netem: using the userspace relay (AF_PACKET)"


def choose_backend() -> str:
    """'netem' or 'userspace', as select_backend decides for $TESTBED_IMPAIRMENT (default auto)."""
    backend, _reason = select_backend(os.environ.get(BACKEND_ENV, "auto"))
    return backend.name
