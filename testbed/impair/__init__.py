"""Link impairment engine: delay, jitter, loss, duplication, reordering, rate, up/down.

`Impairment` (spec.py) says what one direction of a link does; a backend makes
it happen: `netem` (kernel qdiscs) where the kernel has sch_netem, else the
`userspace` relay (userspace.py, forward.py, relay.py). Both implement
`ImpairBackend` (base.py): the network builder asks the backend for each link's
wiring, starts it, records it, and changes it live through the same object,
never by name. `select_backend` picks one; `get_backend` finds a run's again.

Importing this package stays cheap (no Mininet, no pydantic): relay processes
import it and must start fast.
"""
from testbed.impair.backends import get_backend, select_backend
from testbed.impair.base import (DIRECTIONS, ImpairBackend, ImpairError, LinkImpairment, Port, StartContext,
                                 keeps_frames, needs_impairment, shaped)
from testbed.impair.netem import NetemBackend, NetemLink, netem_available
from testbed.impair.spec import Impairment, apply_assignments, parse_assignments
from testbed.impair.userspace import RelayHandle, UserspaceBackend, start_relay

__all__ = [
    "DIRECTIONS", "ImpairBackend", "ImpairError", "Impairment", "LinkImpairment", "NetemBackend", "NetemLink",
    "Port", "RelayHandle", "StartContext", "UserspaceBackend", "apply_assignments", "get_backend",
    "keeps_frames", "needs_impairment", "netem_available", "parse_assignments", "select_backend", "shaped",
    "start_relay",
]
