"""The port-socket buffer window: raised for the block, restored after (errors too), never lowered."""
from __future__ import annotations

import pytest

from testbed.engine.sockbuf import port_socket_buffers


def test_raised_inside_restored_after_even_on_error(tmp_path):
    sysctl, lock = tmp_path / "rmem_default", tmp_path / "lock"
    sysctl.write_text("212992\n")
    with pytest.raises(RuntimeError):
        with port_socket_buffers(4 << 20, sysctl, lock) as old:
            assert old == 212992 and sysctl.read_text() == str(4 << 20)
            raise RuntimeError("build failed")
    assert sysctl.read_text() == "212992"


def test_a_larger_default_is_left_alone_and_an_unreadable_one_changes_nothing(tmp_path):
    sysctl, lock = tmp_path / "rmem_default", tmp_path / "lock"
    sysctl.write_text("8388608")
    with port_socket_buffers(4 << 20, sysctl, lock) as old:
        assert old is None and sysctl.read_text() == "8388608"
    with port_socket_buffers(4 << 20, tmp_path / "missing", lock) as old:
        assert old is None
