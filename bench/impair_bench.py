"""Benchmark of the userspace impairment relay (as root, from the repository root:
`python -m bench.impair_bench [--quick]`, which puts `tests.tools` on the path).

Rows:
- TCP throughput (iperf3, 5 s) through a relay link with 0 ms delay, as a ratio
  to the same two namespaces joined by a direct veth, measured in the same run
  (both with offloads off on the namespace ends, as the testbed configures them).
- The same with the namespace ends' offloads left on: the relay then carries
  GSO super-frames (PACKET_VNET_HDR), far fewer per second.
- One-way delay accuracy with 10 ms configured, at ~1k and ~10k packets/s:
  median and p99 error of the measured one-way delay (UDP probe timestamps;
  sender and receiver share the machine's clocks), taken where the kernel
  received each datagram (SO_TIMESTAMPNS: what the link did; the row's target)
  and, for the record, where the receiving program read it (its own wake-up
  latency on a busy 2-core machine included).
Everything is created under tbimp<random> names and removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from testbed.impair import Impairment, start_relay

try:
    from tests.tools.lab import NetPair
except ModuleNotFoundError:  # run as a script: the repository root is not on the path
    sys.exit("run from the repository root: python -m bench.impair_bench")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5, help="iperf3 duration per TCP row")
    ap.add_argument("--quick", action="store_true", help="1 s per TCP row and fewer UDP probes (a smoke run)")
    args = ap.parse_args()
    udp_rows = ((1000, 3000), (10000, 20000))
    if args.quick:
        args.seconds, udp_rows = 1, ((1000, 500), (10000, 2000))
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, str]] = []

    direct = NetPair.create(direct=True)
    try:
        direct.ping(3, 0.05)
        base_bps = direct.iperf(args.seconds)
    finally:
        direct.destroy()
    rows.append(("TCP direct veth (baseline)", f"{base_bps / 1e9:.2f} Gbit/s", "1.00"))

    pair = NetPair.create()
    workdir = Path(tempfile.mkdtemp(prefix="tbimp"))
    try:
        relay = start_relay(pair.if_a, pair.if_b, Impairment(), Impairment(),
                            workdir / "relay.sock", workdir / "relay.log")
        try:
            pair.ping(3, 0.05)
            bps = pair.iperf(args.seconds)
            rows.append(("TCP relay, 0 ms", f"{bps / 1e9:.2f} Gbit/s", f"{bps / base_bps:.2f}"))
            ten = Impairment(delay_ms=10)
            relay.set("a_to_b", ten)
            relay.set("b_to_a", ten)
            bps = pair.iperf(args.seconds)
            rows.append(("TCP relay, 10 ms each way", f"{bps / 1e9:.2f} Gbit/s", f"{bps / base_bps:.2f}"))
            relay.set("b_to_a", Impairment())
            for pps, count in udp_rows:
                r = pair.udp(count, pps=pps, deadline=30)
                rows.append((f"one-way delay 10 ms @ {pps // 1000}k pps ({count} pkts)",
                             f"median err {r['kernel_delay_median_ms'] - 10:+.3f} ms",
                             f"p99 err {r['kernel_delay_p99_ms'] - 10:+.3f} ms (target <= 0.3), loss "
                             f"{r['loss_pct']:.2f}%, reordered {r['reordered']}; read by the program: median "
                             f"{r['delay_median_ms'] - 10:+.3f}, p99 {r['delay_p99_ms'] - 10:+.3f} ms"))
        finally:
            relay.stop()
    finally:
        pair.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

    # GSO pass-through: node ends keep TSO on, the relay moves 64 KB super-frames
    pair = NetPair.create(node_offloads=True)
    workdir = Path(tempfile.mkdtemp(prefix="tbimp"))
    try:
        with start_relay(pair.if_a, pair.if_b, Impairment(), Impairment(),
                         workdir / "relay.sock", workdir / "relay.log"):
            pair.ping(3, 0.05)
            bps = pair.iperf(args.seconds)
            rows.append(("TCP relay, 0 ms, node offloads ON (GSO frames)", f"{bps / 1e9:.2f} Gbit/s",
                         f"{bps / base_bps:.2f}"))
    finally:
        pair.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'value':<22}  ratio / detail")
    print("-" * (width + 50))
    for name, value, extra in rows:
        print(f"{name:<{width}}  {value:<22}  {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
