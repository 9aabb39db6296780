"""The network follows the core when it moves PDU sessions between UPFs (MEC fallback, and back).

The core decides (testbed.ran.amf: PFCP heartbeats, N4 to the central UPF,
an NGAP modify to the gNB). What the transport network must then do is the
SDN controller's and the servers' routing: the session's address now sits
behind the central UPF's switch port, and the servers' replies must go there.
`Follower.poll` reads where the core anchors each session (its status file,
which it writes at once on a move) and, when that differs from what the run
applies, `apply` records the moves in the run's changes ("upf": session host
-> UPF, testbed.engine.slices), pushes the controller plan of the relocated
RAN plan (the app installs new rules before deleting old ones) and rewrites
the servers' return routes (changed ones replaced, stale /32s deleted).

`Follower` runs in a thread for as long as a drill can lose a UPF (or
`testbed fault inject` holds one down); the times it applied each change are
kept for the drill's report.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from testbed.engine.ran import core_anchors
from testbed.engine.rundir import Manifest
from testbed.engine.slices import check_controller, locked_changes, push_plan
from testbed.errors import TestbedError
from testbed.ran.agents import server_routes
from testbed.ran.network import relocated
from testbed.ran.plan import RanPlan

POLL_S = 0.1
APPLY_TIMEOUT_S = 15.0


def route_changes(topo, plan: RanPlan, before: Mapping[str, str], after: Mapping[str, str],
                  addresses: Mapping[str, str]) -> dict[str, list[str]]:
    """node -> the `ip route` commands that take its return routes from the `before` anchoring to `after`."""
    old = server_routes(topo, relocated(plan, before), addresses)
    new = server_routes(topo, relocated(plan, after), addresses)
    out: dict[str, list[str]] = {}
    for node in sorted(old.keys() | new.keys()):
        o, n = set(old.get(node, [])), set(new.get(node, []))
        keep = {d for d, _ in n}
        cmds = [f"ip route replace {d} via {v}" for d, v in sorted(n - o)]  # new ones in first, then
        cmds += [f"ip route del {d} via {v}" for d, v in sorted(o - n) if d not in keep]  # the stale ones out
        if cmds:
            out[node] = cmds
    return out


def apply(m: Manifest, topo, plan: RanPlan, moves: Mapping[str, str], run: Callable[[str, list[str]], Any],
          addresses: Mapping[str, str], timeout: float = APPLY_TIMEOUT_S) -> dict[str, Any]:
    """Make the switches and servers follow `moves` (the complete set: sessions not named are at their
    planned UPF). `run(node, argv)` runs a command in a node. Returns what changed and how long it took."""
    check_controller(m)
    t0 = time.monotonic()
    with locked_changes(m.dir) as ch:
        before = dict(ch["upf"])
        ch["upf"] = dict(moves)
        _old, new_plan, apply_s = push_plan(m, topo, plan, ch, timeout)
    t_rules = time.monotonic() - t0
    for node, cmds in route_changes(topo, plan, before, moves, addresses).items():
        r = run(node, ["sh", "-c", "; ".join(cmds)])
        if getattr(r, "returncode", 0) != 0:
            raise TestbedError(f"{node}: cannot move its return routes: {getattr(r, 'stderr', '')!s:.300}")
    return {"generation": new_plan["generation"], "moved": sorted(set(moves) - set(before)),
            "back": sorted(set(before) - set(moves)), "rules_s": round(t_rules, 3),
            "routes_s": round(time.monotonic() - t0 - t_rules, 3), "switches_s": round(apply_s, 3)}


@dataclass
class Follower:
    """Polls the core and applies its moves until stopped; `applied` keeps (wall time, change) per apply."""

    manifest: Manifest
    topo: Any
    plan: RanPlan
    run: Callable[[str, list[str]], Any]
    addresses: Mapping[str, str]
    interval: float = POLL_S
    applied: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _current: dict[str, str] = field(default_factory=dict)

    def start(self) -> "Follower":
        with locked_changes(self.manifest.dir) as ch:
            self._current = dict(ch["upf"])
        self._thread = threading.Thread(target=self._loop, name="relocate-follower", daemon=True)
        self._thread.start()
        return self

    def poll(self) -> dict[str, Any] | None:
        """One look at the core; the change applied, if any."""
        anchors = core_anchors(self.plan, self.manifest.dir)
        if anchors is None or anchors == self._current:
            return None
        t = time.time()
        change = apply(self.manifest, self.topo, self.plan, anchors, self.run, self.addresses)
        self._current = dict(anchors)
        change.update(seen_at=round(t, 3), done_at=round(time.time(), 3))
        self.applied.append(change)
        return change

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except (TestbedError, OSError, KeyError) as exc:
                if len(self.errors) < 20:
                    self.errors.append(str(exc)[:300])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=APPLY_TIMEOUT_S + 5)
