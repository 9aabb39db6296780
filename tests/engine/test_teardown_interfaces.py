"""Teardown deletes a run's root-namespace interfaces in one kernel batch (a link group of its own) and
never takes anything else with them: a foreign interface that happens to sit in that group stays, and
the run's own then go one by one."""
from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from testbed.engine.teardown import GROUP_BASE, delete_interfaces

pytestmark = pytest.mark.integration


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def _exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


@pytest.fixture
def run_id():
    if os.geteuid() != 0:
        pytest.skip("creating interfaces needs root")
    rid = secrets.token_hex(2)
    made: list[str] = []
    yield rid, made
    for name in made:
        subprocess.run(["ip", "link", "del", "dev", name], capture_output=True, timeout=30)


def _pairs(rid: str, made: list[str], n: int) -> list[str]:
    names = []
    for i in range(n):
        a, b = f"tt{rid}a{i}", f"tt{rid}b{i}"
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
        made.append(a)
        names += [a, b]
    return names


def test_the_runs_interfaces_go_in_one_batch_and_others_stay(run_id):
    rid, made = run_id
    ours = _pairs(rid, made, 20)
    other = f"tt{rid}x"
    _ip("link", "add", other, "type", "veth", "peer", "name", f"tt{rid}y")  # not named by the run: must survive
    made.append(other)
    delete_interfaces([*ours, f"tt{rid}gone"], rid)  # a name already gone is no error
    assert not [n for n in ours if _exists(n)]
    assert _exists(other)


def test_a_foreign_interface_in_the_runs_group_stays_and_the_runs_own_still_go(run_id):
    rid, made = run_id
    ours = _pairs(rid, made, 3)
    decoy = f"tt{rid}d"
    _ip("link", "add", decoy, "type", "veth", "peer", "name", f"tt{rid}e")
    _ip("link", "set", "dev", decoy, "group", str(GROUP_BASE + int(rid, 16)))  # someone else's, same number
    made.append(decoy)
    delete_interfaces(ours, rid)
    assert not [n for n in ours if _exists(n)]
    assert _exists(decoy)
