"""Impaired links against the same path unimpaired (as root, from the repository root:
`python -m bench.impaired_path_bench [--seconds 5] [--rounds 3]`).

iperf3 TCP between two hosts across 3 switches, the slicing app granting iperf,
as the testbed builds them (userspace TSO where the daemon runs it), in the
same run:
- the baseline: every link unimpaired;
- the middle link with a relay and nothing set (`delay: 0ms`, changeable at run time);
- the middle link with 10 ms each way, with the kernel's default TCP buffers
  (the window then bounds TCP, not the link: 20 ms of round trip with a 6 MiB
  receive buffer, half of it window, allows about 1.3 Gbit/s: a real link would
  do the same);
- the same 10 ms with both hosts' TCP buffers raised to 64 MiB (net.ipv4.tcp_rmem
  / tcp_wmem in their namespaces, as a host tuned for long fat networks has them),
  the baseline measured again with the same buffers.
Each is the median of --rounds runs. Target (issue 12): at least 0.95x the
unimpaired path. Prints the rows, then one JSON line with the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from bench.stateful_bench import iperf
from bench.switchpath_bench import chain

TARGET = 0.95
SWITCHES = 3
TUNED = "4096 131072 67108864"  # min, default, max octets: 64 MiB of window room


def path(middle: str) -> str:
    """The 3-switch chain with `middle` (YAML keys) on the sw1-sw2 link."""
    text = chain(SWITCHES)
    return text.replace("{endpoints: [sw1, sw2]}", "{endpoints: [sw1, sw2]" + (f", {middle}" if middle else "") + "}")


def measure(middle: str, seconds: int, rounds: int, tuned: bool = False) -> float:
    """Median bits/s of `rounds` iperf3 runs tablet -> srv, in one testbed of path(middle)."""
    from testbed.engine.testbed import Testbed
    from testbed.topology.loader import parse_text

    with Testbed(parse_text(path(middle), "impaired-path.yaml"), controller_app="slicing") as tb:
        if tuned:
            for name in ("tablet", "srv"):
                tb.node(name).run(["sysctl", "-q", "-w", f"net.ipv4.tcp_rmem={TUNED}", f"net.ipv4.tcp_wmem={TUNED}"])
        return statistics.median(iperf(tb, seconds) for _ in range(rounds))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5, help="iperf3 duration per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="measurements per row (the median is reported)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, Open vSwitch)", file=sys.stderr)
        return 2
    base = measure("", a.seconds, a.rounds)
    base_tuned = measure("", a.seconds, a.rounds, tuned=True)
    rows = [("relay, nothing set (delay 0 ms)", measure("delay: 0ms", a.seconds, a.rounds), base),
            ("10 ms each way, default TCP buffers", measure("delay: 10ms", a.seconds, a.rounds), base),
            ("10 ms each way, 64 MiB TCP buffers", measure("delay: 10ms", a.seconds, a.rounds, tuned=True), base_tuned)]
    out = {"unimpaired_bps": base, "unimpaired_tuned_bps": base_tuned}
    lines = [f"unimpaired {base / 1e9:.2f} Gbit/s ({base_tuned / 1e9:.2f} with 64 MiB TCP buffers); "
             f"{SWITCHES} switches, median of {a.rounds}; target >= {TARGET}x"]
    for title, bps, against in rows:
        ratio = bps / against
        out[title] = {"bps": bps, "ratio": ratio}
        lines.append(f"  {title:<38} {bps / 1e9:6.2f} Gbit/s  ratio {ratio:.2f} "
                     f"({'met' if ratio >= TARGET else 'NOT met'})")
    print(" | ".join(x.strip() for x in lines))
    print("\n".join(lines[1:]))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
