"""Grant or revoke slice membership of a running testbed, without a restart.

The paper's "apply for a slice on demand": the run's changes (extra members,
revocations) are kept in its run directory (slice-changes.json), the policy is
recompiled from the topology file plus those changes, and the plan is
rewritten with the next generation number. The controller app (PlanApp) sees
the new plan, installs the difference (new rules first, then deletions), and
reports the generation in its status file; we wait for every switch to report it.

A revoke also ends the member's live sessions in that slice: once no switch
admits its new connections any more, the connections it opened in the slice
(orig source = the member, ct_mark = the slice's id, in the run's conntrack
zone) are deleted from the connection tracker, so their next packets are
neither established nor ever committed again (only a SYN opens a connection),
and a later grant does not revive them.
"""
from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass, field
from pathlib import Path

from testbed.engine.controller import wait_generation, write_plan
from testbed.engine.ovs import dump_conntrack, flush_conntrack
from testbed.openflow.layout import make_layout
from testbed.engine.ran import run_controller_plan
from testbed.ran.network import prepare, relocated, run_policy
from testbed.engine.rundir import Manifest, is_alive
from testbed.errors import TestbedError, UsageError
from testbed.slicing.conntrack import opened_by, parse_conntrack
from testbed.slicing.policy import INFRA
from testbed.topology.loader import load

CHANGES_FILE = "slice-changes.json"


@dataclass
class SliceChange:
    action: str
    slice: str
    member: str
    generation: int
    grants_added: list[tuple] = field(default_factory=list)
    grants_removed: list[tuple] = field(default_factory=list)
    rules_added: int = 0
    rules_removed: int = 0
    apply_s: float = 0.0
    connections_cut: int = 0


def load_changes(run_dir: Path) -> dict[str, dict]:
    """The run's live changes: slice members granted ("extra") and revoked, and PDU sessions the core
    anchored at another UPF than planned ("upf": session host -> UPF, testbed.engine.relocate)."""
    try:
        data = json.loads((run_dir / CHANGES_FILE).read_text())
    except (OSError, ValueError):
        data = {}
    return {"extra": data.get("extra", {}), "revoked": data.get("revoked", {}), "upf": data.get("upf", {})}


@contextmanager
def locked_changes(run_dir: Path) -> Iterator[dict[str, dict]]:
    """The run's changes under its lock (two CLIs, or a drill and a CLI, at once: one after the other)."""
    with open(run_dir / (CHANGES_FILE + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield load_changes(run_dir)


def push_plan(m: Manifest, topo, ran, ch: dict[str, dict], timeout: float) -> tuple[dict, dict, float]:
    """Write the controller plan of the run with changes `ch` as the next generation, save `ch`, and wait
    until every switch applied it; (old plan, new plan, seconds waited). Call it holding `locked_changes`."""
    run_dir = m.dir
    try:
        old_plan = json.loads((run_dir / "plan.json").read_text())
    except (OSError, ValueError) as exc:
        raise TestbedError(f"run {m.run_id} has no readable controller plan ({exc})") from None
    gen = int(old_plan.get("generation", 1)) + 1
    plan = run_controller_plan(topo, make_layout(topo, m.run_id), relocated(ran, ch["upf"]) if ran else None,
                               ch["extra"], ch["revoked"], generation=gen)
    _check_same_network(old_plan, plan)
    tmp = run_dir / (CHANGES_FILE + ".tmp")
    tmp.write_text(json.dumps(ch, indent=1))
    tmp.replace(run_dir / CHANGES_FILE)
    write_plan(run_dir, plan)
    t0 = time.monotonic()
    try:
        wait_generation(run_dir / "controller-status.json", set(plan["switches"]), gen, timeout)
    except TimeoutError:
        raise TestbedError(f"the controller did not apply plan generation {gen} within {timeout:.0f}s "
                           f"(does app {m.controller.get('app')} follow plan changes?); "
                           f"see {m.controller.get('log')}") from None
    return old_plan, plan, time.monotonic() - t0


def check_controller(m: Manifest) -> None:
    """A live change needs the run's own controller app, running."""
    if m.controller.get("remote"):
        raise UsageError("this run uses a remote controller; live changes go through the testbed's own app")
    ctrl_pid = m.pids.get("controller")
    if not ctrl_pid or not is_alive(int(ctrl_pid[0]), ctrl_pid[1]):
        raise TestbedError(f"the controller of run {m.run_id} is not running; nothing would apply the change")


def _rule_keys(plan: dict) -> set[str]:
    return {json.dumps([dp, r.get("table", 0), r["priority"], r["match"]], sort_keys=True)
            for dp, rules in plan["switches"].items() for r in rules}


def change_membership(m: Manifest, action: str, slice_name: str, member: str, timeout: float = 30.0) -> SliceChange:
    """`action` is "grant" or "revoke"; returns what changed once every switch has applied it."""
    if action not in ("grant", "revoke"):
        raise UsageError(f"unknown action {action!r}")
    check_controller(m)
    topo, ran = prepare(load(m.topology), m.run_id)
    slices = {s.name for s in topo.slices}
    if slice_name not in slices:
        raise UsageError(f"no slice {slice_name!r} in {m.topology}; slices: {', '.join(sorted(slices)) or 'none'}"
                         + (" (infra is implicit and cannot be changed)" if slice_name == INFRA else ""))
    hosts = {n.name for n in topo.hosts}
    if member not in hosts:
        raise UsageError(f"{member!r} is not a host of {m.topology}")
    if action == "grant":
        _check_ue_has_session(ran, slice_name, member, m.topology)
    with locked_changes(m.dir) as ch:
        before = run_policy(topo, ran, ch["extra"], ch["revoked"])
        in_file = run_policy(topo, ran).members.get(slice_name, [])
        extra, revoked = ch["extra"].setdefault(slice_name, []), ch["revoked"].setdefault(slice_name, [])
        if action == "grant":
            if member in revoked:
                revoked.remove(member)
            if member not in in_file and member not in extra:
                extra.append(member)
        else:
            if member in extra:
                extra.remove(member)
            if member not in revoked:
                revoked.append(member)
        after = run_policy(topo, ran, ch["extra"], ch["revoked"])
        old_plan, plan, apply_s = push_plan(m, topo, ran, ch, timeout)
        gen = plan["generation"]
        cut = end_sessions(plan, slice_name, member) if action == "revoke" else 0
    b, a = set(before.grants), set(after.grants)
    ok, nk = _rule_keys(old_plan), _rule_keys(plan)
    return SliceChange(action, slice_name, member, gen,
                       grants_added=sorted(astuple(g) for g in a - b),
                       grants_removed=sorted(astuple(g) for g in b - a),
                       rules_added=len(nk - ok), rules_removed=len(ok - nk), apply_s=apply_s,
                       connections_cut=cut)


def _check_ue_has_session(ran, slice_name: str, member: str, topology: str) -> None:
    """A UE reaches a slice only through its PDU session in it, set up when it registered (one per slice it is
    a member of in the file): granting a slice it has no session in would add rules nothing can use."""
    sub = next((s for s in ran.subscribers if s.name == member), None) if ran is not None else None
    if sub is None or any(s.slice == slice_name for s in sub.sessions):
        return
    have = ", ".join(f"{s.slice} (uesimtun{s.index})" for s in sub.sessions) or "none"
    raise UsageError(f"{member!r} is a 5G UE with no PDU session in slice {slice_name!r} (its sessions: {have}); "
                     f"a UE sets up one session per slice it is a member of in the file, when it registers, so a "
                     f"live grant can only give back a slice it has a session in. Add {member} to the members of "
                     f"{slice_name!r} in {topology} and start the testbed again")


def end_sessions(plan: dict, slice_name: str, member: str) -> int:
    """Delete the tracker's entries of the connections `member` opened in `slice_name`; returns how many.

    Called once the plan without the grant is applied everywhere, so no new one can appear meanwhile.
    """
    zone = plan.get("conntrack", {}).get("zone")
    # the member's own address, and its PDU sessions' (hosts "member/uesimtunN" behind their UPF)
    ips = [rec["ip"] for h, rec in plan.get("hosts", {}).items()
           if (h == member or h.startswith(member + "/")) and rec.get("ip")]
    sid = plan.get("slices", {}).get(slice_name, {}).get("id")
    if zone is None or not ips or sid is None:
        return 0  # not a stateful plan: nothing is tracked
    table = parse_conntrack(dump_conntrack(zone))
    conns = [c for ip in ips for c in opened_by(table, ip, sid)]
    errors = flush_conntrack(zone, [c.tuple() for c in conns])
    if errors:
        raise TestbedError("the new rules are in, but live sessions could not be ended: " + "; ".join(errors[:3]))
    return len(conns)


def _check_same_network(old: dict, new: dict) -> None:
    """The topology file may have been edited since the run started: refuse a plan for another network."""
    before, after = old.get("hosts") or {}, new["hosts"]
    # a PDU session host ("ue/uesimtunN") comes and goes with the UE's grant in its slice, and moves with
    # its session between UPFs; the nodes themselves must be as they were
    nodes = lambda hosts: {h for h in hosts if "/" not in h}  # noqa: E731
    if before and (nodes(before) != nodes(after) or any(before[h] != after[h] for h in nodes(before))):
        raise TestbedError("the topology file no longer matches the running network (hosts, addresses or "
                           "ports changed); restart the run to use the edited file")
