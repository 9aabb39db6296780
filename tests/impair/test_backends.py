"""Backends behind one interface: wiring, records and live changes, without root.

The engine only ever calls these methods, so they are what has to be right:
which Mininet link class and HTB each link gets, which root-namespace
interfaces are recorded before creation, and that a record alone is enough to
change a running link from another process (here: against a stand-in relay
control socket).
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mininet.link import Link, TCIntf

from testbed.impair import (ImpairBackend, ImpairError, Impairment, NetemBackend, StartContext, UserspaceBackend,
                            get_backend, needs_impairment, select_backend)
from testbed.impair.base import impairment_of
from testbed.impair.relaylink import RelayLink
from testbed.impair.userspace import relay_ends
from testbed.openflow.layout import LinkLayout
from testbed.topology.model import Impair, LinkParams


def link(index: int = 3, a_to_b: Impair | None = None, **params: object) -> LinkLayout:
    return LinkLayout(index=index, a="a", b="s1", port_a=0, port_b=1, intf_a="tbab12h00-eth0",
                      intf_b="tbab12s00-eth1", params=LinkParams(**params), a_to_b=a_to_b)


def test_registry_gives_back_the_recorded_backend():
    for name, cls in (("netem", NetemBackend), ("userspace", UserspaceBackend)):
        backend = get_backend(name)
        assert isinstance(backend, cls) and isinstance(backend, ImpairBackend) and backend.name == name
    with pytest.raises(ImpairError, match="unknown impairment backend"):
        get_backend("tc")


def test_selected_backend_says_why():
    backend = select_backend("userspace")
    assert isinstance(backend, UserspaceBackend) and "requested" in backend.reason


def test_any_setting_even_zero_makes_a_link_changeable():
    assert not needs_impairment(link(bw="10Mbit"))
    assert needs_impairment(link(delay="0ms"))
    assert needs_impairment(link(a_to_b=Impair(loss="1%")))


def test_userspace_wiring_puts_a_relay_where_impaired_and_keeps_htb():
    us = UserspaceBackend()
    plain = us.wiring(link(bw="10Mbit"), "ab12")
    assert plain["cls"] is Link and issubclass(plain["cls1"], TCIntf) and plain["params1"] == {"bw": 10.0, "qos": True}
    assert us.root_interfaces(link(bw="10Mbit"), "ab12") == []
    kw = us.wiring(link(bw="10Mbit", delay="5ms"), "ab12")
    assert kw["cls"] is RelayLink and kw["relay_ends"] == relay_ends("ab12", 3) == ("tbab12r03a", "tbab12r03b")
    assert kw["params2"] == {"bw": 10.0, "qos": True}  # the relay does no rate: HTB on the node-side interfaces
    assert us.root_interfaces(link(delay="5ms"), "ab12") == ["tbab12r03a", "tbab12r03b"]
    ab, _ = us.impairments(link(bw="10Mbit", delay="5ms"))
    assert ab.rate_bps is None and ab.delay_ms == 5


def test_netem_wiring_leaves_rate_to_netem_on_impaired_links():
    nm = NetemBackend()
    assert nm.wiring(link(bw="10Mbit", delay="5ms"), "ab12") == {"cls": Link}  # netem replaces the root qdisc
    assert issubclass(nm.wiring(link(bw="10Mbit"), "ab12")["cls1"], TCIntf)
    assert nm.root_interfaces(link(delay="5ms"), "ab12") == []
    ab, ba = nm.impairments(link(bw="10Mbit", delay="5ms", a_to_b=Impair(delay="7ms", jitter_dist="uniform")))
    assert (ab.delay_ms, ab.jitter_dist, ab.rate_bps) == (7.0, "uniform", 10_000_000)
    assert (ba.delay_ms, ba.rate_bps) == (5.0, 10_000_000)


def test_bursty_loss_maps_to_gilbert():
    imp = impairment_of(LinkParams(loss="2%", loss_burst=4))
    assert (imp.loss_model, imp.loss_pct, imp.loss_burst) == ("gilbert", 2.0, 4.0)
    assert impairment_of(LinkParams(loss="2%")).loss_model == "random"


class FakeRelay:
    """A relay's control socket and nothing else: answers one JSON line per connection."""

    def __init__(self, path: Path, reply: dict) -> None:
        self.requests: list[dict] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.sock.settimeout(5)
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                data += conn.recv(4096)
            self.requests.append(json.loads(data))
            conn.sendall(json.dumps(self.reply).encode() + b"\n")

    def close(self) -> None:
        self.thread.join(5)
        self.sock.close()


def test_userspace_change_from_the_record_alone(tmp_path: Path):
    us = UserspaceBackend()
    rec = us.record(link(delay="5ms"), Impairment(delay_ms=5), Impairment(delay_ms=5),
                    control=str(tmp_path / "r.sock"), relay_pid=1)
    relay = FakeRelay(tmp_path / "r.sock", {"ok": True})
    get_backend(rec["backend"]).apply(rec, "a_to_b", Impairment(delay_ms=20))
    relay.close()
    assert relay.requests == [{"cmd": "set", "direction": "a_to_b", "impairment": Impairment(delay_ms=20).to_dict()}]
    assert rec["a_to_b"]["delay_ms"] == 20 and rec["b_to_a"]["delay_ms"] == 5


def test_refused_or_unreachable_change_is_an_error_and_leaves_the_record(tmp_path: Path):
    us = UserspaceBackend()
    rec = us.record(link(delay="5ms"), Impairment(), Impairment(), control=str(tmp_path / "r.sock"), relay_pid=1)
    with pytest.raises(ImpairError, match="r.sock"):  # no relay listening
        us.apply(rec, "b_to_a", Impairment(delay_ms=1))
    relay = FakeRelay(tmp_path / "r.sock", {"ok": False, "error": "nope"})
    with pytest.raises(ImpairError, match="nope"):
        us.apply(rec, "b_to_a", Impairment(delay_ms=1))
    relay.close()
    assert rec["b_to_a"] == Impairment().to_dict()
    with pytest.raises(ValueError, match="direction"):
        us.apply(rec, "sideways", Impairment())  # type: ignore[arg-type]


def test_netem_record_names_both_egresses(monkeypatch: pytest.MonkeyPatch):
    calls: list[list[str]] = []

    def fake_tc(port, *args):
        calls.append([*port.ns_prefix(), "tc", *args])
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr("testbed.impair.netem._tc", fake_tc)
    nm = NetemBackend()
    ctx = StartContext(run_id="ab12", workdir=Path("/nonexistent"), netns_pid={"a": 4242, "s1": None})
    handle, rec = nm.start(link(delay="5ms"), ctx)
    nm.apply(rec, "b_to_a", Impairment(delay_ms=9))
    assert handle.pid is None
    assert (rec["intf_a"], rec["pid_a"]) == ("tbab12h00-eth0", 4242)
    assert (rec["intf_b"], rec["pid_b"]) == ("tbab12s00-eth1", None)
    # a_to_b leaves through B's interface (root ns: a switch port), b_to_a through A's, in A's namespace
    assert calls[0][:5] == ["tc", "qdisc", "replace", "dev", "tbab12s00-eth1"]
    assert calls[1][:8] == ["nsenter", "-t", "4242", "-n", "tc", "qdisc", "replace", "dev"]
    assert calls[2][:9] == ["nsenter", "-t", "4242", "-n", "tc", "qdisc", "change", "dev", "tbab12h00-eth0"]
    assert rec["b_to_a"]["delay_ms"] == 9


def test_importing_the_package_stays_cheap():
    """Relay processes import testbed.impair: no Mininet, no pydantic, no topology model."""
    heavy = ("mininet", "pydantic", "testbed.topology.model", "testbed.engine")
    code = f"import sys, testbed.impair, testbed.impair.relay; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
