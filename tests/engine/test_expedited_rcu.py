"""Teardown runs with the kernel's RCU grace periods expedited, and leaves the machine's setting as it found it
(ovs-vswitchd's release of each port waits for one grace period: 22 s of waiting for 1,500 ports without)."""
from __future__ import annotations

from pathlib import Path

import pytest

from testbed import platform


def knob(tmp_path: Path, value: str) -> Path:
    p = tmp_path / "rcu_expedited"
    p.write_text(value)
    return p


def test_turned_on_inside_and_put_back_after(tmp_path):
    k = knob(tmp_path, "0\n")
    with platform.expedited_rcu(k) as turned_on:
        assert turned_on is True
        assert k.read_text() == "1"
    assert k.read_text() == "0"


def test_put_back_when_the_block_fails(tmp_path):
    k = knob(tmp_path, "0")
    with pytest.raises(RuntimeError), platform.expedited_rcu(k):
        raise RuntimeError("teardown step failed")
    assert k.read_text() == "0"


def test_already_on_is_left_on(tmp_path):
    k = knob(tmp_path, "1\n")
    with platform.expedited_rcu(k) as turned_on:
        assert turned_on is False
    assert k.read_text() == "1\n"  # not ours: never written


class ReadOnlyKnob:
    """/sys/kernel/rcu_expedited in a container: readable, not writable."""

    def __init__(self, value: str):
        self.value, self.writes = value, 0

    def read_text(self) -> str:
        return self.value

    def write_text(self, _text: str) -> int:
        self.writes += 1
        raise PermissionError(30, "Read-only file system")


def test_missing_or_read_only_knob_changes_nothing(tmp_path):
    with platform.expedited_rcu(tmp_path / "absent") as turned_on:
        assert turned_on is False
    assert not (tmp_path / "absent").exists()
    ro = ReadOnlyKnob("0\n")
    with platform.expedited_rcu(ro) as turned_on:  # type: ignore[arg-type]
        assert turned_on is False
    assert ro.writes == 1  # tried once, and did not try to "restore" what it never set
