"""OpenFlow cookies of the testbed's rules: which slice and which kind of rule each one is.

The one home of the cookie layout. The rule compiler (flows.py) writes cookies,
`testbed flows` (inspect.py) and the controller apps read them, so a rule on a
switch can always be traced back to the slice that asked for it.
"""
from __future__ import annotations

COOKIE_MAGIC = 0x7462  # "tb": rules of this testbed
COMMON = "-"  # pseudo-slice of rules that serve every slice (trunks, forwarding)
# service/icmp: a member opens a granted flow (stateful: the commit of its first packet);
# reply: the stateless app's replies; track: a host pair's IP into conntrack; fragment: the
# non-first fragments of a member's new datagram; state: established/related traffic of a
# slice's connections; committed: a just-committed packet on its way out; direct: a whole datagram of a
# UDP flow granted both ways, forwarded without the tracker.
KINDS = {0: "drop", 1: "service", 2: "reply", 3: "icmp", 4: "arp", 5: "trunk", 6: "forward", 7: "track",
         8: "fragment", 9: "state", 10: "committed", 11: "direct"}
_KIND_ID = {v: k for k, v in KINDS.items()}


def cookie(slice_id: int, kind: str, seq: int = 0) -> int:
    """64-bit cookie: 0x7462 | slice id (16 bits) | rule kind (8 bits) | sequence (24 bits)."""
    return (COOKIE_MAGIC << 48) | (slice_id << 32) | (_KIND_ID[kind] << 24) | (seq & 0xFFFFFF)


def decode_cookie(value: int) -> tuple[int, str] | None:
    """(slice id, rule kind) of one of our cookies, None for anyone else's."""
    if value >> 48 != COOKIE_MAGIC:
        return None
    return (value >> 32) & 0xFFFF, KINDS.get((value >> 24) & 0xFF, "?")


def slice_id(value: int) -> int:
    """The slice id bits of any cookie (0 for rules that are not ours)."""
    decoded = decode_cookie(value)
    return decoded[0] if decoded else 0
