"""The capture agent follows a UE's TUNs by name: opened when they appear, opened again when recreated.

A UE that re-attaches under load recreates its uesimtun interfaces; a capture bound to the old one sees
nothing of the new, and one left out at the start never captured at all: every echo reply through
them was then reported as a false block.
"""
import socket

import traffic.sink as sink


class FakeSock:
    def __init__(self, name: str) -> None:
        self.name, self.closed = name, False

    def setblocking(self, flag: bool) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_missing_tun_is_opened_when_it_appears_and_reopened_when_recreated(monkeypatch):
    index: dict[str, int] = {"uesimtun0": 7}

    def nametoindex(name: str) -> int:
        if name not in index:
            raise OSError(19, "No such device")
        return index[name]

    monkeypatch.setattr(socket, "if_nametoindex", nametoindex)
    monkeypatch.setattr(sink, "open_capture", FakeSock)
    extra = sink.Extra(["uesimtun0", "uesimtun1"])
    assert set(extra.refresh()) == {"uesimtun1"}  # missing at the start: reported, not fatal
    first = extra.socks["uesimtun0"]
    assert set(extra.refresh()) == {"uesimtun1"} and extra.socks["uesimtun0"] is first  # unchanged: kept
    index["uesimtun1"] = 9  # the session came up
    assert extra.refresh() == {} and extra.socks["uesimtun1"].name == "uesimtun1"
    index["uesimtun0"] = 11  # deleted and created again: a new ifindex
    extra.refresh()
    assert first.closed and extra.socks["uesimtun0"] is not first
    del index["uesimtun1"]  # gone for a moment: the old capture stays until one comes back
    assert set(extra.refresh()) == {"uesimtun1"} and "uesimtun1" in extra.socks
