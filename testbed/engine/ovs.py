"""Ask a running Open vSwitch what it holds: flows and meters of one bridge (ovs-ofctl), and the
connection tracker's entries of a run's zone (ovs-appctl dpctl/*-conntrack), which it can also flush.

The text is parsed by pure functions elsewhere (testbed.slicing.inspect); this
module only runs the commands.
"""
from __future__ import annotations

import re
import subprocess


def dump_flows(bridge: str) -> str:
    r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge], capture_output=True, text=True,
                       timeout=20)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or f"ovs-ofctl dump-flows {bridge} failed")
    return r.stdout


def meter_stats(bridge: str) -> dict[int, dict]:
    """meter id -> {"rate_kbps", "packets", "bytes", "dropped"} (best effort: {} if unsupported)."""
    out: dict[int, dict] = {}
    r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", bridge], capture_output=True, text=True,
                       timeout=20)
    for m in re.finditer(r"meter=(\d+)\s+\S+\s+(?:\S+\s+)*?bands=\s*type=drop rate=(\d+)", r.stdout):
        out.setdefault(int(m.group(1)), {})["rate_kbps"] = int(m.group(2))
    r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "meter-stats", bridge], capture_output=True, text=True,
                       timeout=20)
    for block in re.split(r"(?=meter:)", r.stdout):
        m = re.match(r"meter:(\d+)", block)
        if not m:
            continue
        d = out.setdefault(int(m.group(1)), {})
        for key, pat in (("packets", r"packet_in_count:(\d+)"), ("bytes", r"byte_in_count:(\d+)"),
                         ("dropped", r"0: packet_count:(\d+)"), ("dropped_bytes", r"0: packet_count:\d+ byte_count:(\d+)")):
            if mm := re.search(pat, block):
                d[key] = int(mm.group(1))
    return out


def dump_conntrack(zone: int) -> str:
    """`ovs-appctl dpctl/dump-conntrack zone=N`: the tracker's entries in one zone (a run's), as text
    (parsed by testbed.slicing.conntrack.parse_conntrack). '' when no datapath exists yet."""
    r = subprocess.run(["ovs-appctl", "dpctl/dump-conntrack", f"zone={zone}"], capture_output=True, text=True,
                       timeout=20)
    return r.stdout if r.returncode == 0 else ""


def flush_conntrack(zone: int, tuples: list[str] | None = None) -> list[str]:
    """Delete tracker entries of `zone`: those with these original-direction tuples (conntrack.Conn.tuple()),
    or the whole zone when `tuples` is None. Returns the errors (an entry already gone is not one).

    No datapath argument: OVS 3.1's dpctl/flush-conntrack takes a datapath name for a field of the
    tuple, and a run's switches all use the one datapath of their type anyway.
    """
    errors = []
    for t in ([None] if tuples is None else tuples):
        r = subprocess.run(["ovs-appctl", "dpctl/flush-conntrack", f"zone={zone}", *([t] if t else [])],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0 and "No such file" not in r.stderr and "no datapaths" not in r.stderr:
            errors.append(f"flush-conntrack zone={zone} {t or ''}: {r.stderr.strip()}")
    return errors


def get_frags(bridge: str) -> str:
    """The bridge's IP fragment handling ('normal', 'nx-match', ...): whether first fragments carry ports."""
    r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "get-frags", bridge], capture_output=True, text=True,
                       timeout=20)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or f"ovs-ofctl get-frags {bridge} failed")
    return r.stdout.strip()
