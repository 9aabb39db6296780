"""`make bench`: speed of the testbed against baselines measured in the same run.

Row 1 (foundation): `testbed up`+`down` of linear topologies (N switches, a host
each) as a ratio to a plain Mininet script building the same topology with the
same switch type (OVS, same datapath) and waiting for the same controller.
Targets (issue 12): `up` at most 1.0x and up+down at most 0.5x Mininet's at
every N, and time per node flat in N. Each measurement
runs in a fresh process; the median of --repeat runs is reported.
Then the reference topology's up and down times, the throughput cost of the
stateful slice rules (iperf3 TCP through the same three switches with the
slicing app vs allow-all, same run, target ratio >= 0.9: bench/stateful_bench.py),
the switch path against a bare veth pair (iperf3 TCP across as many switches as
the reference's longest clinic-terminal -> data-centre path, target >= 0.5:
bench/switchpath_bench.py), impaired links against the same path unimpaired (a relay with nothing set, 10 ms
each way with default and with 64 MiB TCP buffers, target >= 0.95: bench/impaired_path_bench.py),
then the 5G rows (bench/ran_bench.py: the 5G path's TCP throughput against the
plain switch path, UEs registering per second, memory per UE, 500 UEs), then
`testbed verify`'s proof at 100 and 1,000 nodes against the packet matrix on the
same tables (bench/verify_bench.py), then a generated 1,000-node alliance run
whole beside the same at 100 nodes (bench/scale_bench.py: up, reachability,
the proof, down, memory per node, checks per second, leftovers), then the
link-impairment benchmark (bench/impair_bench.py).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def measure(mode: str, n: int) -> dict:
    r = subprocess.run([sys.executable, str(HERE / "linear.py"), "--mode", mode, "--n", str(n)],
                       capture_output=True, text=True, timeout=900, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(f"{mode} N={n} failed:\n{r.stdout}\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def median_of(mode: str, n: int, repeat: int) -> dict:
    runs = [measure(mode, n) for _ in range(repeat)]
    return {k: statistics.median(r[k] for r in runs) for k in ("up_s", "down_s")}


UP_TARGET, TOTAL_TARGET = 1.0, 0.5  # issue 12: `up` at most plain Mininet's, up+down at most half of it


def linear_rows(sizes: list[int], repeat: int) -> bool:
    """True when every N meets the targets: up <= 1.0x and up+down <= 0.5x plain Mininet's."""
    print("## testbed up+down vs plain Mininet, linear topology (N switches + N hosts), median of", repeat)
    print(f"{'N':>4} {'testbed up':>11} {'down':>7} {'total':>7} | {'mininet up':>11} {'down':>7} {'total':>7} "
          f"| {'up x':>5} {'total x':>7} {'ms/node':>8}")
    ok = True
    for n in sizes:
        tb = median_of("testbed", n, repeat)
        mn = median_of("mininet", n, repeat)
        t_tb, t_mn = tb["up_s"] + tb["down_s"], mn["up_s"] + mn["down_s"]
        up_ratio, ratio = tb["up_s"] / mn["up_s"], t_tb / t_mn
        ok &= up_ratio <= UP_TARGET and ratio <= TOTAL_TARGET
        print(f"{n:>4} {tb['up_s']:>10.2f}s {tb['down_s']:>6.2f}s {t_tb:>6.2f}s | {mn['up_s']:>10.2f}s "
              f"{mn['down_s']:>6.2f}s {t_mn:>6.2f}s | {up_ratio:>5.2f} {ratio:>7.2f} {1000 * t_tb / (2 * n):>8.1f}",
              flush=True)
    return ok


def reference_row() -> None:
    code = ("import json,time;from testbed.engine.testbed import Testbed;"
            "tb=Testbed.from_file('topologies/xiangtan-alliance.yaml');tb.up();tb.down();"
            "print(json.dumps(tb.timings))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    t = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"\n## reference topology (xiangtan-alliance): up {t['up_s']:.2f}s, down {t['down_s']:.2f}s", flush=True)


def module_row(title: str, module: str) -> None:
    """A benchmark module's first output line (its row) under `title`."""
    print(f"\n## {title}", flush=True)
    r = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=900, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(r.stdout + r.stderr)
    print(r.stdout.strip().splitlines()[0], flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10,50,100,500")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-impair", action="store_true")
    ap.add_argument("--skip-stateful", action="store_true")
    ap.add_argument("--skip-ran", action="store_true")
    ap.add_argument("--skip-verify", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    a = ap.parse_args()
    t0 = time.monotonic()
    ok = linear_rows([int(x) for x in a.sizes.split(",")], a.repeat)
    reference_row()
    if not a.skip_stateful:
        module_row("stateful slice rules (conntrack) vs allow-all: iperf3 TCP through the same 3 switches, same run",
                   "bench.stateful_bench")
    module_row("switch path vs a bare veth pair: iperf3 TCP across the reference's longest terminal -> server "
               "switch count, same run", "bench.switchpath_bench")
    print("\n## impaired links vs the same path unimpaired: iperf3 TCP across 3 switches, the middle link with a "
          "relay, same testbed", flush=True)
    subprocess.run([sys.executable, "-m", "bench.impaired_path_bench"], cwd=REPO, check=False)
    if not a.skip_ran:
        print()
        subprocess.run([sys.executable, "-m", "bench.ran_bench"], cwd=REPO, check=False)
    if not a.skip_verify:
        print()
        subprocess.run([sys.executable, "-m", "bench.verify_bench"], cwd=REPO, check=False)
    if not a.skip_scale:
        module_row("a generated 1,000-node alliance run whole (up, reachability, isolation proof, down) beside "
                   "the same at 100 nodes", "bench.scale_bench")
    if not a.skip_impair and (HERE / "impair_bench.py").exists():
        print()
        # as a module from the repository root: it imports its measurement tools from tests.tools
        subprocess.run([sys.executable, "-m", "bench.impair_bench"], cwd=REPO, check=False)
    print(f"\nbench finished in {time.monotonic() - t0:.0f}s; linear targets (up <= {UP_TARGET}x, up+down <= "
          f"{TOTAL_TARGET}x plain Mininet's at every N): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
