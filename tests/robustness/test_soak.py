"""Consecutive runs leave no growth: open files, memory, processes, files under the state directory.

Each round is one `testbed run` (it must pass) and one `testbed up -d` / `exec` /
`down` cycle of the same topology (up -d used to leave its up-PID.log in the
state directory for good). After every round: none of the runs' processes,
containers or mounts remain and the state directory is empty again; across the
rounds, what Open vSwitch itself counts (database cells, ports, rules,
connection-tracker entries) is back where it was, and the long-lived daemons
every run talks to (OVS, Docker) hold no more open files beyond a small
allowance. Their RSS is printed, not judged: other users' bigger networks on a
shared OVS raise it, and the allocator rarely gives memory back.
"""
from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from tests.helpers import cli
from tests.robustness.gauges import DAEMONS, growth, sample
from tests.robustness.netlock import net_lock

pytestmark = [pytest.mark.integration, pytest.mark.docker]
TOPOLOGY = Path(__file__).resolve().parent / "robust.yaml"
FD_ALLOWANCE = 8  # per daemon, over the whole soak (a cache entry or two, not one per run)


def _trend(values: list[int]) -> float:
    """Median of the last third minus median of the first third (after warm-up): robust to one noisy reading."""
    third = max(1, len(values) // 3)
    return statistics.median(values[-third:]) - statistics.median(values[:third])


@pytest.mark.parametrize("rounds", [3, pytest.param(20, marks=pytest.mark.long)])
def test_soak_no_growth(rounds, tmp_path):
    state = tmp_path / "state"
    env = {**os.environ, "TESTBED_STATE_DIR": str(state)}
    run_ids: set[str] = set()
    readings: list[dict[str, int]] = []
    problems: list[str] = []
    for i in range(rounds):
        with net_lock():
            out = tmp_path / f"report-{i}"
            r = cli("run", "--report-dir", str(out), "--format", "json", str(TOPOLOGY), env=env, check=False,
                    timeout=300)
            assert r.returncode == 0, f"round {i + 1}: testbed run failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
            run_ids.add(json.loads((out / "report.json").read_text())["run_id"])
            cli("up", "-d", str(TOPOLOGY), env=env, timeout=300)
            assert " 1 received" in cli("exec", "tablet", "--", "ping", "-c1", "-W3", "emr", env=env).stdout
            run_ids.update(m["run_id"] for m in json.loads(cli("status", "--json", env=env).stdout))
            cli("down", env=env, timeout=300)
            g = sample(state, run_ids)
        readings.append(g)
        print(f"round {i + 1}: " + ", ".join(f"{k}={v}" for k, v in g.items()), flush=True)
        for key in ("run_processes", "run_containers", "state_mounts", "state_files"):
            if g[key]:
                problems.append(f"round {i + 1}: {key}={g[key]} (state dir: {sorted(os.listdir(state))[:10]})")
    grew = growth(readings)
    print("growth after round 1: " + ", ".join(f"{k}={v:+d}" for k, v in grew.items()))
    for key in grew:  # what OVS itself counts (db cells, ports, rules, conntrack entries) is back where it was
        if key.startswith(("ovs_", "ovsdb_")) and grew[key] > 0:
            problems.append(f"{key} grew by {grew[key]} over {rounds} rounds")
    if rounds >= 6:  # a trend needs rounds; the short CI soak checks the per-round invariants above
        warm = readings[1:]
        for name in DAEMONS:
            fds = _trend([g[f"{name}_fds"] for g in warm])
            if fds > FD_ALLOWANCE:
                problems.append(f"{name}: open files grew by {fds:+.0f} over {rounds} rounds")
    assert not problems, "\n".join(problems)
