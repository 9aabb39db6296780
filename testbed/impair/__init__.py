"""Link impairment engine: delay, jitter, loss, duplication, reordering, rate, up/down.

`Impairment` (spec.py) says what one direction of a link does; a backend makes
it happen: `netem` (kernel qdiscs) where the kernel has sch_netem, else the
`userspace` relay (relay.py), picked by `select_backend`. The network builder
wires each link as described in base.py and keeps the returned handle to change
the link live.
"""
from testbed.impair.backends import select_backend
from testbed.impair.base import DIRECTIONS, ImpairBackend, ImpairError, LinkImpairment, Port
from testbed.impair.netem import NetemBackend, netem_available
from testbed.impair.spec import Impairment, apply_assignments, parse_assignments
from testbed.impair.userspace import RelayHandle, UserspaceBackend, start_relay

__all__ = [
    "DIRECTIONS", "ImpairBackend", "ImpairError", "Impairment", "LinkImpairment", "NetemBackend",
    "Port", "RelayHandle", "UserspaceBackend", "apply_assignments", "netem_available",
    "parse_assignments", "select_backend", "start_relay",
]
