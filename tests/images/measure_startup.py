"""Measure what Docker nodes cost compared with plain network-namespace nodes.

Prints: node-image build time (cold with --cold, else whatever build_image does
now, normally a cache hit), the cached build time, and for N rounds the time to
  * create a network namespace + veth pair (one end moved in, both up) and delete it,
  * start a container (`docker run -d --network none`, until running) and `docker rm -f` it,
  * start a container and attach a veth end into its network namespace.

Run as root with a running engine:
    PYTHONPATH=. .venv/bin/python tests/images/measure_startup.py [--rounds 10] [--cold] [--json]

Everything created here is named tbh<random>... and containers carry the label
org.medalliance.testbed.run=helper-test; only those are removed, in `finally`.
Times include spawning the `ip`/`docker` processes, as the testbed will too.
"""
from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from testbed.images import NODE_IMAGE, build_image

RUN_LABEL = "org.medalliance.testbed.run=helper-test"
TIMEOUT_S = 60


def sh(*cmd: str) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {res.stderr.strip()}")
    return res.stdout.strip()


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class Resources:
    """What this script created, so that only that is removed."""

    def __init__(self) -> None:
        self.netns: list[str] = []
        self.links: list[str] = []
        self.containers: list[str] = []

    def cleanup(self) -> None:
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
        for ns in self.netns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        for cid in self.containers:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False, timeout=TIMEOUT_S)
        self.netns, self.links, self.containers = [], [], []


def netns_round(res: Resources, tag: str) -> tuple[float, float]:
    ns, host_end, node_end = f"tbh{tag}", f"tbh{tag}a", f"tbh{tag}b"

    def up() -> None:
        sh("ip", "netns", "add", ns)
        res.netns.append(ns)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end)
        res.links.append(host_end)
        sh("ip", "link", "set", node_end, "netns", ns)
        sh("ip", "-n", ns, "link", "set", node_end, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "set", host_end, "up")

    def down() -> None:
        sh("ip", "link", "del", host_end)
        res.links.remove(host_end)
        sh("ip", "netns", "del", ns)
        res.netns.remove(ns)

    return timed(up), timed(down)


def container_round(res: Resources, tag: str, image: str, with_veth: bool) -> tuple[float, float]:
    name = f"tbh{tag}"
    host_end, node_end = f"tbh{tag}a", f"tbh{tag}b"

    def up() -> None:
        cid = sh("docker", "run", "-d", "--name", name, "--network", "none", "--label", RUN_LABEL, image)
        res.containers.append(cid)
        deadline = time.monotonic() + TIMEOUT_S
        while sh("docker", "inspect", "-f", "{{.State.Running}}", cid) != "true":
            if time.monotonic() > deadline:
                raise RuntimeError(f"container {name} not running after {TIMEOUT_S} s")
            time.sleep(0.01)
        if with_veth:
            pid = sh("docker", "inspect", "-f", "{{.State.Pid}}", cid)
            sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end)
            res.links.append(host_end)
            sh("ip", "link", "set", node_end, "netns", pid)
            sh("nsenter", "-t", pid, "-n", "ip", "link", "set", node_end, "up")
            sh("ip", "link", "set", host_end, "up")

    def down() -> None:
        cid = res.containers[-1]
        sh("docker", "rm", "-f", cid)  # the veth pair goes with the container's netns
        res.containers.remove(cid)
        if with_veth:
            res.links.remove(host_end)

    return timed(up), timed(down)


def summary(values: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--cold", action="store_true", help="force a cold image build first (about a minute)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = ap.parse_args()
    rounds = max(1, min(args.rounds, 100))

    first = build_image(NODE_IMAGE, force=args.cold)
    again = build_image(NODE_IMAGE)
    results: dict = {
        "image": NODE_IMAGE.name,
        "first_build_s": round(first.seconds, 2),
        "first_build_cached": first.cached,
        "cached_build_s": round(again.seconds, 3),
        "rounds": rounds,
    }
    res = Resources()
    runs: dict[str, tuple[list[float], list[float]]] = {
        "netns+veth": ([], []),
        "container": ([], []),
        "container+veth": ([], []),
    }
    run_id = secrets.token_hex(3)
    try:
        for i in range(rounds):
            for kind, (ups, downs) in runs.items():
                tag = f"{run_id}{i:02d}"[:9]
                if kind == "netns+veth":
                    u, d = netns_round(res, tag)
                else:
                    u, d = container_round(res, tag, NODE_IMAGE.name, with_veth=kind == "container+veth")
                ups.append(u)
                downs.append(d)
    finally:
        res.cleanup()
    for kind, (ups, downs) in runs.items():
        results[kind] = {"up": summary(ups), "down": summary(downs)}
    extra = results["container+veth"]["up"]["median_ms"] - results["netns+veth"]["up"]["median_ms"]
    results["extra_start_ms_container_vs_netns"] = round(extra, 1)

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    state = "cached" if first.cached else "cold"
    print(f"node image {NODE_IMAGE.name}: first build {first.seconds:.1f} s ({state}), "
          f"cached build {again.seconds * 1000:.0f} ms")
    print(f"{rounds} rounds, median (min-max) ms:")
    for kind in runs:
        up, down = results[kind]["up"], results[kind]["down"]
        print(f"  {kind:15s} up {up['median_ms']:7.1f} ({up['min_ms']}-{up['max_ms']})"
              f"   down {down['median_ms']:7.1f} ({down['min_ms']}-{down['max_ms']})")
    print(f"extra start-up per node, container+veth vs netns+veth: {extra:.0f} ms (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
