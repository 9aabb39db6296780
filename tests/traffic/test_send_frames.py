"""A sender whose frame's interface is gone sends the rest (one missing TUN used to end the whole sender).

A UE re-registering recreates its session TUNs; a crafted frame routed into one that is missing for that
moment made the sender raise before sending anything, so every probe of that node was lost in one go.
"""
from __future__ import annotations

import socket

import pytest

import traffic.send as send


class FakeWire:
    def __init__(self, missing: set[str]) -> None:
        self.missing = missing

    def prepare(self, frame: bytes, iface: str | None = None):
        if iface in self.missing:
            raise OSError(19, f"{iface}: No such device")
        return (iface or "eth0", frame)


def test_frames_on_a_missing_interface_are_skipped_and_named_once():
    out = {"errors": []}
    frames = ["aa", ["uesimtun1", "bb"], ["uesimtun1", "cc"], ["uesimtun0", "dd"]]
    ready = send._prepared(FakeWire({"uesimtun1"}), frames, out)
    assert ready == [("eth0", b"\xaa"), ("uesimtun0", b"\xdd")]
    assert out["frames_skipped"] == 2
    assert out["errors"] == ["frame: uesimtun1: No such device"]


class RefusingSocket:
    made: list["RefusingSocket"] = []

    def __init__(self, *args) -> None:
        self.closed = False
        RefusingSocket.made.append(self)

    def bind(self, addr) -> None:
        raise OSError(19, "No such device")

    def close(self) -> None:
        self.closed = True


def test_a_socket_that_could_not_bind_is_closed_and_not_kept(monkeypatch):
    monkeypatch.setattr(send.socket, "socket", RefusingSocket)
    wire = send._Wire("eth0", send.TunRoutes(None, None, None))
    with pytest.raises(OSError, match="uesimtun1: No such device"):
        wire.prepare(b"\x45" + bytes(19), "uesimtun1")
    assert wire.socks == {} and RefusingSocket.made[-1].closed  # the next frame tries again, with a new one
