"""`testbed clean` decides ownership from the resources themselves, whatever state directory it runs with.

A run's bridges and containers carry their owner's PID and start time. Another
`testbed clean` (another TESTBED_STATE_DIR, as every test has) must leave a
LIVE run's bridges and containers alone, remove those whose owner is dead, and
never touch anything without the testbed's run tag.
"""
from __future__ import annotations

import os
import subprocess

from testbed.engine.ownership import owner_fields
from testbed.engine.rundir import process_start_time
from testbed.images import NODE_IMAGE

from tests.helpers import MINIMAL, cli

LABEL = "org.medalliance.testbed"


def _dead_owner() -> dict[str, str]:
    p = subprocess.Popen(["true"])
    start = process_start_time(p.pid) or 1.0
    p.wait()
    return owner_fields(p.pid, start)


def _bridge(name: str, ids: dict[str, str]) -> None:
    args = ["ovs-vsctl", "--may-exist", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev"]
    args += [f'external-ids:{k}="{v}"' for k, v in ids.items()]
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def _bridges() -> set[str]:
    return set(subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split())


def _container(name: str, labels: dict[str, str]) -> None:
    args = ["docker", "run", "-d", "--network", "none", "--name", name]
    for k, v in labels.items():
        args += ["--label", f"{k}={v}"]
    r = subprocess.run([*args, NODE_IMAGE.name, "sleep", "120"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def _exists(name: str) -> bool:
    return subprocess.run(["docker", "inspect", name], capture_output=True).returncode == 0


def test_clean_elsewhere_spares_live_runs_and_removes_dead_owners(state_dir, tmp_path):
    me = owner_fields(os.getpid(), process_start_time(os.getpid()))
    dead = _dead_owner()
    tag = f"{os.getpid() % 10000:04x}"
    live_br, dead_br, decoy_br = f"tbl{tag}", f"tbd{tag}", f"decoy{tag}"
    live_c, dead_c, decoy_c = f"tbl{tag}-c", f"tbd{tag}-c", f"decoy{tag}-c"
    other_state = {**os.environ, "TESTBED_STATE_DIR": str(tmp_path / "elsewhere")}
    up = None
    try:
        _bridge(live_br, {"testbed-run": "fe01", **me})
        _bridge(dead_br, {"testbed-run": "fe02", **dead})
        _bridge(decoy_br, {})
        own = lambda f: {f"{LABEL}.{k.removeprefix('testbed-')}": v for k, v in f.items()}  # noqa: E731
        _container(live_c, {f"{LABEL}.run": "fe01", **own(me)})
        _container(dead_c, {f"{LABEL}.run": "fe02", **own(dead)})
        _container(decoy_c, {})
        # a real live run in this test's state directory, cleaned from another one
        up = cli("up", "-d", str(MINIMAL))
        rid = [m for m in os.listdir(state_dir) if len(m) == 4][0]
        run_bridges = {b for b in _bridges() if b.startswith(f"tb{rid}")}
        assert run_bridges
        out = cli("clean", env=other_state).stdout
        assert dead_br in out and dead_c in out
        have = _bridges()
        assert run_bridges <= have and live_br in have and decoy_br in have and dead_br not in have
        assert _exists(live_c) and _exists(decoy_c) and not _exists(dead_c)
        assert " 1 received" in cli("exec", "dr-tablet-01", "--", "ping", "-c1", "-W3", "emr").stdout
    finally:
        if up is not None:
            cli("down", "--all", check=False)
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", live_br, "--", "--if-exists", "del-br", dead_br,
                        "--", "--if-exists", "del-br", decoy_br], capture_output=True)
        subprocess.run(["docker", "rm", "-f", live_c, dead_c, decoy_c], capture_output=True)
