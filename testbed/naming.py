"""Names of everything a run creates, all carrying the run id.

Linux limits interface names to 15 characters and Mininet names a node's ports
`NODE-ethN`, so internal node names are short: `tb` + 4-hex run id + kind letter
+ base-36 index (`tb3fa2s0a`). The user's names (`dr-tablet-01`) are mapped to
these in the run manifest. Teardown and `clean` find resources by this run id.
"""
from __future__ import annotations

import secrets

PREFIX = "tb"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
INDEX_WIDTH = 2  # base-36 digits of a node's index: tb + 4 + kind + 2 + "-ethNN" fits in 15
MAX_PER_KIND = 36**INDEX_WIDTH  # hosts, and separately switches, one run can name (validate() checks)


def new_run_id(taken: set[str]) -> str:
    """A random 4-hex id not used by any run we know about."""
    for _ in range(1000):
        rid = secrets.token_hex(2)
        if rid not in taken:
            return rid
    raise RuntimeError("could not find a free run id")


def b36(n: int, width: int = INDEX_WIDTH) -> str:
    if n >= 36**width:
        raise ValueError(f"index {n} too large for {width} base-36 digits")
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out


def host_name(rid: str, index: int) -> str:
    return f"{PREFIX}{rid}h{b36(index)}"


def switch_name(rid: str, index: int) -> str:
    return f"{PREFIX}{rid}s{b36(index)}"


def run_prefix(rid: str) -> str:
    """Every interface and bridge of run `rid` starts with this."""
    return f"{PREFIX}{rid}"


def dpid(index: int) -> str:
    """16-hex-digit datapath id; the high bytes spell 'tb' so they are recognisable."""
    return f"7462{index + 1:012x}"
