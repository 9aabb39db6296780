"""A generated 1,000-node alliance, run whole: up, reachability, the isolation proof, reports, down.

Issue 12's scale row. The alliance is bench.verify_bench's (a data centre with
EMR, PACS, HIS and VDI; sites of a switch, eight terminals and a kiosk; two
slices), built for real with `testbed run FILE --isolation verify` (the packet
prober needs a capture agent per host: the proof is how an alliance this size
is checked). Baseline, in the same run: the same alliance at 100 nodes, so
time per node can be seen flat (or not) in N.

Per size: the run's verdict and exit code; up, reachability, verify and down
seconds (from its report); memory per node (the machine's MemAvailable at its
lowest during the run against before it, over the node count); checks per
second (reachability pairs pinged per second, pairs proved per second); and
whether `testbed clean --dry-run` finds anything of it afterwards (a clean
teardown leaves nothing).
`python -m bench.scale_bench [--sizes 100,1000]`
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.verify_bench import alliance_yaml

REPO = Path(__file__).resolve().parents[1]
TESTBED = [str(Path(sys.executable).parent / "testbed")]


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/meminfo has no MemAvailable")


class LowWater(threading.Thread):
    """MemAvailable's lowest value while running, sampled every 0.5 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.low = mem_available_kib()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            self.low = min(self.low, mem_available_kib())


def row(n: int, workdir: Path) -> dict:
    topo = workdir / f"alliance-{n}.yaml"
    topo.write_text(alliance_yaml(n))
    before = mem_available_kib()
    sampler = LowWater()
    sampler.start()
    t0 = time.monotonic()
    r = subprocess.run([*TESTBED, "run", str(topo), "--isolation", "verify", "--format", "json", "-q",
                        "--report-dir", str(workdir / f"report-{n}")], capture_output=True, text=True,
                       timeout=1800, cwd=REPO)
    wall = time.monotonic() - t0
    sampler.stopping.set()
    sampler.join()
    doc = json.loads((workdir / f"report-{n}" / "report.json").read_text())
    t, nodes = doc["timings"], doc["counts"]["nodes"]
    passed = sum(v["pass"] for v in doc["summary"].values())
    failed = sum(v["fail"] + v["skip"] for v in doc["summary"].values())  # a skip is no pass
    reach = sum(1 for c in doc["checks"] if c["kind"] == "reachability")
    pairs = (doc.get("verify") or {}).get("pairs", 0)
    left = subprocess.run([*TESTBED, "clean", "--dry-run"], capture_output=True, text=True, timeout=120, cwd=REPO)
    return {"n": nodes, "exit": r.returncode, "verdict": doc["verdict"], "passed": passed,
            "failed": failed, "wall_s": round(wall, 1), "up_s": round(t["up_s"], 1),
            "reachability_s": round(t.get("reachability_s", 0.0), 1), "verify_s": round(t.get("verify_s", 0.0), 1),
            "down_s": round(t["down_s"], 1),
            "mib_per_node": round((before - sampler.low) / 1024 / nodes, 2),
            "pings_per_s": round(reach / t["reachability_s"], 1) if t.get("reachability_s") else None,
            "pairs_proved_per_s": round(pairs / t["verify_s"]) if t.get("verify_s") else None,
            "leftovers": "nothing" if left.stdout.strip() == "nothing to clean" else left.stdout.strip()[:200]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100,1000")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        for n in (int(x) for x in a.sizes.split(",")):
            rows.append(row(n, Path(tmp)))
    base = rows[0]
    per_node = lambda r: (r["up_s"] + r["down_s"]) / r["n"]  # noqa: E731
    cells = [f"N={r['n']} {r['verdict']} (exit {r['exit']}, {r['passed']} passed, {r['failed']} failed or skipped): "
             f"up {r['up_s']}s, reachability {r['reachability_s']}s ({r['pings_per_s']} pairs/s), verify "
             f"{r['verify_s']}s ({r['pairs_proved_per_s']} pairs/s), down {r['down_s']}s, {r['mib_per_node']} MiB "
             f"per node, up+down per node {per_node(r) / per_node(base):.2f}x N={base['n']}'s, leftovers: "
             f"{r['leftovers']}" for r in rows]
    print("; ".join(cells), flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
