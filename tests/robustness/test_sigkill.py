"""`testbed run` SIGKILLed at random moments, then `testbed clean`: nothing of the runs is left, decoys survive.

Moments are seeded (replayable) and cover container start, relay start, the
checks and plain times. After every kill and clean: no OVS bridge, port or
interface of the run, no interface named after it, no process in its network
namespaces, no process it had started (controller, relays, node shells, agents),
no container, no mount naming its run directory or containers, no run directory.
The decoys (a namespace with a process, an OVS bridge, a veth pair, a container,
a process) must all survive every clean.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from testbed.images import NODE_IMAGE

from tests.helpers import cli
from tests.robustness.decoys import Decoys
from tests.robustness.killer import moments, run_and_kill
from tests.robustness.netlock import net_lock
from tests.robustness.residue import Facts, residue

pytestmark = [pytest.mark.integration, pytest.mark.docker]
TOPOLOGY = Path(__file__).resolve().parent / "robust.yaml"


@pytest.mark.parametrize("kills,seed", [(3, 7), pytest.param(20, 2026, marks=pytest.mark.long)])
def test_sigkill_then_clean_leaves_nothing_and_spares_decoys(kills, seed, tmp_path):
    state = tmp_path / "state"
    env = {**os.environ, "TESTBED_STATE_DIR": str(state), "TB_REPORTS": str(tmp_path / "reports")}
    decoys = Decoys(f"{os.getpid() % 100000:05d}", NODE_IMAGE.name).create()
    log, left, lost = [], [], []
    try:
        for i, moment in enumerate(moments(kills, seed)):
            with net_lock():
                k = run_and_kill(TOPOLOGY, moment, env)
                facts = [Facts.read(d) for d in sorted(state.glob("*")) if (d / "manifest.json").exists()]
                cli("clean", env=env, timeout=300)
                here = [r for f in facts for r in residue(f, state, k.tree)]
                if not facts:
                    here += residue(Facts("none", str(state / "none")), state, k.tree)
                gone = decoys.missing()
            log.append(f"kill {i + 1} at {moment} -> {k.at_s:.2f}s (killed={k.killed}, rc={k.rc}, "
                       f"{len(k.tree)} processes, runs {[f.run_id for f in facts]}); last output: {k.last_line[:80]!r}; "
                       f"left {len(here)}")
            print(log[-1], flush=True)
            left += [f"kill {i + 1} ({moment}): {r}" for r in here]
            lost += [f"kill {i + 1} ({moment}): {g}" for g in gone if g not in " ".join(lost)]
            assert k.killed, f"kill {i + 1}: the run ended before {moment} ({k.last_line})"
    finally:
        decoys.remove()
    assert not left, "left behind after clean:\n" + "\n".join(left)
    assert not lost, "decoys removed:\n" + "\n".join(lost)
