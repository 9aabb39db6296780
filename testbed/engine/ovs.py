"""Ask a running Open vSwitch what it holds: flows and meters of one bridge (ovs-ofctl).

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
