"""The relay's batched frame I/O (recvmmsg/sendmmsg through libc): frames come out as they went in, in order,
a batch at a time, and a frame the kernel refuses costs that frame only. Datagram socket pairs stand in for
the packet sockets (no root needed): both keep message boundaries, which is all the batch relies on."""
from __future__ import annotations

import socket

import pytest

from testbed.impair import mmsg

pytestmark = pytest.mark.skipif(not mmsg.available(), reason="libc without recvmmsg/sendmmsg")


def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def test_frames_cross_in_batches_unchanged_and_in_order():
    src_w, src_r = pair()
    dst_w, dst_r = pair()
    frames = [bytes([i]) * (1 + i * 7) for i in range(100)]
    for f in frames:
        src_w.send(f)
    batch = mmsg.Batch(2048, count=64)
    out = []
    while n := batch.recv(src_r.fileno()):
        lengths = batch.lengths(n)
        sent, octets, errors = batch.send(dst_w.fileno(), lengths)
        assert (sent, octets, errors) == (n, sum(lengths), [])
        out += [dst_r.recv(4096) for _ in range(sent)]
    assert out == frames
    assert batch.recv(src_r.fileno()) == 0  # nothing waiting: 0, not an error


def test_a_refused_frame_costs_only_itself():
    src_w, src_r = pair()
    dst_w, dst_r = pair()
    for i in range(3):
        src_w.send(bytes([i]) * 10)
    batch = mmsg.Batch(2048, count=8)
    n = batch.recv(src_r.fileno())
    dst_r.close()  # the far end is gone: every send fails, each one counted
    sent, octets, errors = batch.send(dst_w.fileno(), batch.lengths(n))
    assert (n, sent, octets) == (3, 0, 0) and len(errors) == 3 and all(isinstance(e, OSError) for e in errors)


def test_a_receive_error_other_than_would_block_is_raised():
    batch = mmsg.Batch(64, count=2)
    with pytest.raises(OSError):
        batch.recv(-1)  # EBADF
