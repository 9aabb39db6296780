"""Fault drills: the file's `faults:` injected on the running testbed, recovery measured with real packets.

The drills run as their own phase after the workloads (so a drill never spoils
another workload's SLO verdict): each fault is injected `at` seconds into the
phase and restored after its `duration`, all on one clock. For every fault,
the intended pairs whose path crosses what fails (`affected`: for a 5G UE the
path is its radio link to its gNB, N3 to its session's UPF and N6 on to the
server) are pinged every 100 ms from a second before the injection until
RECOVERY_WINDOW_S after the restore, and a few pairs the fault does not touch
are pinged alongside as the control. Measured per affected pair: the outage
(first lost echo to the first answered one), the time from the restore to the
first answer (recovery), and the echoes lost. A drill passes when every
affected pair answers again within the window, and the control pairs lost
no more than UNTOUCHED_MAX_LOSS of their echoes (the network as a whole held).

Kinds:
- link-down `A:B`: the link's carrier goes down at both switch ports, then up (a
  trunk: the controller hears the port go down and forwards around it where the
  topology has another path, so the flows' outage is the failover time);
- node-down `NODE`: the node is lost to the network (a host's only link, or
  every link of a switch, down), then back; a lost gNB's UEs that have another
  gNB to go to must re-attach through it and have their flows back before the
  restore (testbed.checks.reattach); a lost MEC UPF's sessions must fall back
  to the central UPF, the network following the core, with their flows back
  before the restore (testbed.checks.upffallback);
- impair `A:B` with `set: [delay=50ms, loss=2%]`: the link degraded (an
  impairment point is spliced in if the file gave it none), then restored to
  what it was;
- controller-kill: the run's controller is killed; the switches fail secure
  and keep forwarding by the rules they hold; after `duration` it is started
  again with the run's plan and every switch confirms its rules.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from testbed.checks import congestion, desktops, reattach, table1, upffallback
from testbed.checks.pings import (  # noqa: F401  (re-exported: the drills' ping reading)
    LATE_S, PING_INTERVAL_S, RECOVERY_WINDOW_S, Pinger, late_sends, measure, parse_ping, parse_rtts,
)
from testbed.checks.result import CheckResult
from testbed.engine.links import apply_impairments, find_link, link_key
from testbed.impair import DIRECTIONS
from testbed.impair.spec import Impairment
from testbed.ran.network import run_policy
from testbed.topology.model import Fault
from testbed.topology.resolve import Routes

LEAD_S = 2.0  # pinging starts this long before the first injection (fresh flows: ARP, first packets)
CONTROL_MAX_LOSS = 0.05  # congestion: another slice's flow may lose this share of its echoes, no more
# An untouched flow beside a drill: the 5G path drops a few echoes, scattered, while drills load the 2-core
# host (the switches' socket buffers overflow when a new plan generation goes in, issue 9's diagnosis); an
# outage loses whole seconds of them, far above this.
UNTOUCHED_MAX_LOSS = 0.10
FAIL_SECURE_MAX_GAP_S = 1.0  # with the controller down, a watched flow may not stop for longer than this
MAX_WATCHED = 6  # affected pairs pinged per fault
CONTROL_PAIRS = 3
DEFAULT_DURATION_S = 5.0
DESKTOP_LEAD_S = 3.0  # desktop clients start this much earlier still: a container's Python, TLS, the welcome


@dataclass
class Drill:
    fault: Fault
    affected: list[tuple[str, str]]
    control: list[tuple[str, str]]
    t_inject: float = 0.0
    t_restore: float = 0.0
    error: str | None = None
    before: dict[str, Any] = field(default_factory=dict)  # what to restore (impair: the link's settings)
    desktops: desktops.DesktopWatch | None = None  # the desktop sessions it must carry over to a spare
    cross: congestion.CrossTraffic | None = None  # congestion: the cross-traffic while it runs
    waiter: threading.Thread | None = None  # controller-kill: waits for the restarted controller's rules
    reattach: reattach.Watch | None = None  # node-down on a gNB: the UEs that must move to another gNB
    fallback: dict[str, str] = field(default_factory=dict)  # node-down on a MEC UPF: session host -> central UPF
    topo: Any = None  # congestion: the run's topology (slice budgets) ...
    slice_of: dict[tuple[str, str], str] = field(default_factory=dict)  # ... and the slice of each granted pair


def wire_links(tb, routes: Routes, src: str, dst: str, slice_name: str | None = None
               ) -> set[tuple[str, str, int]] | None:
    """The hops a packet from src to dst crosses on the wire (a 5G UE's: radio, N3 to the UPF of its session
    in the pair's slice, N6); None: no path."""
    plan = getattr(tb, "ran", None)
    legs = [(src, dst)]
    if plan is not None:
        mine = [s for s in plan.sessions if s.ue == src]
        sess = next((s for s in mine if s.slice == slice_name), mine[0] if mine else None)
        if sess is not None and dst not in {g.name for g in plan.gnbs}:  # to a gNB: its radio link alone
            legs = [(src, sess.gnb), (sess.gnb, sess.upf), (sess.upf, dst)]
    out: set[tuple[str, str, int]] = set()
    for a, b in legs:
        hops = routes.hops(a, b)
        if hops is None:
            return None
        out |= set(hops)
    return out


def affected_pairs(tb, fault: Fault, pairs: list[tuple[str, str]],
                   slice_of: dict[tuple[str, str], str] | None = None) -> tuple[list, list]:
    """(pairs the fault cuts, pairs it leaves alone) among `pairs` (`slice_of`: the slice granting each)."""
    slice_of = slice_of or {}
    routes = Routes(tb.topo)
    index = {link_key(*ln.endpoints): i for i, ln in enumerate(tb.topo.links)}
    index |= {link_key(ln.endpoints[1], ln.endpoints[0]): i for i, ln in enumerate(tb.topo.links)}
    hit, spared = [], []
    cross: set[int] = set()
    shared: dict[tuple[str, str], int] = {}  # congestion: links a pair shares with the cross-traffic
    if fault.type == "congestion":
        to = congestion.cross_target(tb.topo, fault)
        cross = {i for _, _, i in (wire_links(tb, routes, fault.src, to) or set())} if fault.src and to else set()
    for src, dst in pairs:
        path = wire_links(tb, routes, src, dst, slice_of.get((src, dst)))
        if path is None:
            continue
        nodes = {x for a, b, _ in path for x in (a, b)}
        if fault.type in ("link-down", "impair"):
            cut = index.get(fault.target or "") in {i for _, _, i in path}
        elif fault.type == "node-down":
            cut = fault.target in nodes
        elif fault.type == "congestion":  # shares a link with the cross-traffic (not its own sender's flows)
            shared[(src, dst)] = len({i for _, _, i in path} & cross)
            cut = shared[(src, dst)] > 0  # the sender's own flows too: behind its load (watched last, not judged)
        else:  # controller-kill: nothing should be cut (fail secure); every pair is watched
            cut = True
        (hit if cut else spared).append((src, dst))
    if shared:  # watch first the flows sharing the most of its path (beside it in the cell, on the uplink)
        hit.sort(key=lambda p: (p[0] == fault.src, -shared[p]))
    return hit, spared


def _carrier(tb, f: Fault, state: str) -> None:
    """link-down / node-down: the link, or every link of the node, "down" or "up"."""
    for ref in f.carrier_refs(tb.topo.links):
        tb.set_link(ref, [state])


def inject(tb, d: Drill) -> None:
    f = d.fault
    if f.type in ("link-down", "node-down"):
        _carrier(tb, f, "down")
    elif f.type == "impair":
        key, _ = find_link(tb.manifest.wires, f.target, "link")
        rec = tb.manifest.links.get(key)
        d.before = {"link": key, "settings": {x: rec[x] for x in DIRECTIONS} if rec else None}
        tb.set_link(key, list(f.set))
    elif f.type == "controller-kill":
        tb.controller.proc.kill()
        tb.controller.proc.wait(10)
    elif f.type == "congestion":
        d.cross = congestion.CrossTraffic(tb, f, _duration(f))


def restore(tb, d: Drill) -> None:
    f = d.fault
    if f.type in ("link-down", "node-down"):
        _carrier(tb, f, "up")
    elif f.type == "impair":  # back to what the link had (a spliced-in one: to passing everything)
        rec = tb.manifest.links[d.before["link"]]
        settings = d.before["settings"] or {x: Impairment().to_dict() for x in DIRECTIONS}
        apply_impairments(tb.manifest, rec, {x: Impairment.from_dict(settings[x]) for x in DIRECTIONS})
        tb.manifest.save()
    elif f.type == "controller-kill":
        # Started here, confirmed in a thread: the wait for every switch's rules (7 s on a loaded host) held
        # the drill clock, so the drills after it struck late (a MEC UPF lost for 7 s was lost for 1 s)
        tb.restart_controller(wait=False)
        d.waiter = threading.Thread(target=_await_controller, args=(tb, d), daemon=True)
        d.waiter.start()
    elif f.type == "congestion" and d.cross is not None:
        d.before["cross"] = d.cross.stop()


def _await_controller(tb, d: Drill) -> None:
    try:
        d.before["restart_s"] = round(tb.await_controller(), 2)
    except Exception as exc:  # noqa: BLE001 - a restart that does not come back fails the drill, with the reason
        d.error = f"restoring controller-kill: {exc}"


def _reroutes(tb) -> int:
    """How often the run's controller recomputed forwarding around a trunk port going down or up."""
    try:
        return int(json.loads((tb.manifest.dir / "controller-status.json").read_text()).get("reroutes", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def _window(f: Fault, effect: bool) -> tuple[float, float]:
    """When a drill measures (`effect` False: from its pingers' baseline to the end of its recovery window),
    or when its fault may disturb flows (True: congestion and impairment end with their restore, a cut
    flow may take the recovery window to come back)."""
    end = _at(f) + _duration(f)
    if effect and f.type in ("congestion", "impair"):
        return _at(f), end + 1.0
    return _at(f) - (LEAD_S if f.type == "congestion" else 0.0), end + RECOVERY_WINDOW_S


def _overlap(f: Fault, g: Fault) -> bool:
    """Does `g` disturb flows while `f` measures?"""
    (a, b), (c, d) = _window(f, False), _window(g, True)
    return a < d and c < b


def _at(f: Fault) -> float:
    return f.at / 1000.0  # the file's durations are in ms


def _duration(f: Fault) -> float:
    return f.duration / 1000.0 if f.duration else DEFAULT_DURATION_S


def start_pingers(drills: list[Drill], start: Callable[[str, str], Pinger]
                  ) -> tuple[dict[tuple[str, str], Pinger], dict[int, list[Pinger]]]:
    """One pinger per flow, however many drills watch it: (flow -> pinger, id(drill) -> its flows' pingers).

    Every pinger spans all the drills and each drill reads its own window, so a shared one measures the
    same. The same few untouched flows are the control of nearly every drill, and on a host short of CPU
    the echoes are load on the very paths they measure (the reference: 69 pingers -> 47)."""
    shared: dict[tuple[str, str], Pinger] = {}
    for d in drills:
        for pair in d.affected + d.control:
            if pair not in shared:
                shared[pair] = start(*pair)
    return shared, {id(d): [shared[p] for p in d.affected + d.control] for d in drills}


def run_drills(tb, emit=None) -> list[CheckResult]:
    """Every declared fault, on one clock; one CheckResult per fault (kind `fault`)."""
    faults = list(tb.topo.faults)
    if not faults:
        return []
    policy = run_policy(tb.topo, getattr(tb, "ran", None))
    pairs = policy.pairs()
    slice_of = {(g.src, g.dst): g.slice for g in policy.grants}
    cut = {f.name: affected_pairs(tb, f, pairs, slice_of) for f in faults}
    # A pair another drill cuts while this one measures is neither a control here nor (for a controller
    # drill) watched: drills overlap.
    drills = []
    for f in faults:
        hit, spared = cut[f.name]
        others = {p for g in faults if g.name != f.name and g.type != "controller-kill" and _overlap(f, g)
                  for p in cut[g.name][0]}
        if f.type == "controller-kill":
            hit = [p for p in hit if p not in others]
        else:  # watch first the flows no other drill cuts: their outage is this fault's alone
            hit = sorted(hit, key=lambda p: p in others)
        if f.type == "congestion":  # ... and the other slices' flows, which the slicing must protect
            own = slice_of.get((f.src or "", congestion.cross_target(tb.topo, f) or ""))
            hit = sorted(hit, key=lambda p: slice_of.get(p) == own)
        movers = reattach.expected(tb, f)
        fallback = upffallback.expected(tb, f)
        if movers or fallback:  # watch first the flows of the UEs that must re-attach or fall back elsewhere
            ues = set(movers) | {h.split("/")[0] for h in fallback}
            hit = sorted(hit, key=lambda p: (p[0] not in ues, f.target in p))
        drills.append(Drill(f, hit[:MAX_WATCHED], [p for p in spared if p not in others][:CONTROL_PAIRS],
                            topo=tb.topo, slice_of=slice_of, reattach=reattach.Watch(movers) if movers else None,
                            fallback=fallback))
    end = max(_at(f) + _duration(f) for f in faults) + RECOVERY_WINDOW_S + LEAD_S
    if emit:
        emit.stage("faults", f"{len(faults)} fault drills, {end:.0f} s", total=len(faults))
    reroutes_before = _reroutes(tb)
    follower = upffallback.follower(tb) if any(d.fallback for d in drills) else None
    for d in drills:  # the desktop sessions on a host the drill loses: they run through it (first: TLS set-up)
        d.desktops = desktops.watch(tb, d.fault, end - LEAD_S + DESKTOP_LEAD_S)
    lead = LEAD_S + (DESKTOP_LEAD_S if any(d.desktops for d in drills) else 0.0)
    shared, pingers = start_pingers(drills, lambda s, t: Pinger(tb, s, t, end))
    t0 = time.time() + lead
    events = sorted([(_at(d.fault), 0, d) for d in drills] +
                    [(_at(d.fault) + _duration(d.fault), 1, d) for d in drills],
                    key=lambda e: (e[0], -e[1]))  # at the same moment, restore before the next strike
    done = 0
    for at, kind, d in events:
        time.sleep(max(0.0, t0 + at - time.time()))
        try:
            if kind == 0:
                if d.reattach is not None:
                    d.reattach.start(tb)
                d.t_inject = time.time()
                inject(tb, d)
            else:
                d.t_restore = time.time()
                restore(tb, d)
                done += 1
                if emit:
                    emit.progress("faults", done, len(drills))
        except Exception as exc:  # noqa: BLE001 - a drill that cannot run fails, with the reason
            d.error = f"{'injecting' if kind == 0 else 'restoring'} {d.fault.type}: {exc}"
    time.sleep(max(0.0, t0 + end - LEAD_S - time.time()))
    for d in drills:
        if d.waiter is not None:
            d.waiter.join(tb.ready_timeout + 5)
    if follower is not None:
        follower.stop()
    records = {pair: p.stop() for pair, p in shared.items()}
    results = [_verdict(tb, d, [records[p] for p in d.affected + d.control], pingers[id(d)], follower)
               for d in drills]
    moved = _reroutes(tb) - reroutes_before
    for r in results:
        r.metrics["controller_reroutes"] = moved  # forwarding recomputed around failed trunks (both ends, down and up)
    if emit:
        emit.done("faults", f"{sum(r.status == 'pass' for r in results)}/{len(results)} drills recovered",
                  failed=sum(r.status != "pass" for r in results))
    return results + table1.compare(results)


def _verdict(tb, d: Drill, records: list[list[tuple[float, bool]]], pingers: list[Pinger],
             follower: Any = None) -> CheckResult:
    r = _flows_verdict(d, records, pingers)
    f = d.fault
    if d.fallback and not d.error:
        rows = upffallback.result(tb, d.fallback, f.target or "", d.t_inject, follower.applied if follower else [])
        bad, m = upffallback.judge(rows, r.metrics.get("affected", []), d.t_restore - d.t_inject,
                                   follower.errors if follower else ["nothing followed the core"])
        r.metrics["upf_fallback"] = m
        _fold(r, bad, upffallback.line(m))
    if d.reattach is not None and not d.error:
        bad, m = reattach.judge(d.reattach.result(tb, d.t_inject, d.t_restore), r.metrics.get("affected", []),
                                d.t_restore - d.t_inject, f.target or "")
        r.metrics["reattach"] = m
        _fold(r, bad, reattach.line(m))
    if f.desktop:  # an arm of the Table 1 comparison (testbed.checks.table1 reads these)
        r.metrics.update(desktop_arm=f.desktop, repair_s=f.repair / 1000 if f.repair else None,
                         visits_per_day=f.visits_per_day, clinic_day_s=f.clinic_day / 1000)
    if d.desktops is not None:
        ok, line, m = desktops.verdict(d.desktops.stop(d.t_inject), d.t_restore - d.t_inject)
        r.metrics["desktop"] = m
        _fold(r, [] if ok else [line], line)
    return r


def _fold(r: CheckResult, bad: list[str], line: str) -> None:
    """Add a part's verdict to the drill's: its sentence when all passed, else its problems (failing it)."""
    if r.status == "pass" and not bad:
        r.detail = f"{r.detail}; {line}"
        return
    r.detail = "; ".join(bad) if r.status == "pass" else f"{r.detail}; {'; '.join(bad) or line}"
    r.status = "fail"


def _congestion_verdict(d: Drill, name: str, metrics: dict[str, Any], pingers: list[Pinger]) -> CheckResult:
    """Congestion: the watched flows of other slices kept within their budgets while the cross-traffic ran."""
    f = d.fault
    pol = d.slice_of
    rows = [{"src": p.src, "dst": p.dst, "slice": pol.get((p.src, p.dst)),
             **congestion.flow_effect(parse_rtts(getattr(p, "out", "")), d.t_inject, d.t_restore)}
            for p in pingers[:len(d.affected)]]
    cross = metrics.get("cross") or {}
    cross_slice = pol.get((f.src, cross.get("dst")))
    bad, m = congestion.judge(rows, d.topo, cross_slice, f.src, CONTROL_MAX_LOSS)
    metrics.update(m, cross_slice=cross_slice, rate_bps=f.rate, **{"from": f.src, "to": cross.get("dst")})
    if not cross or cross.get("error") or not cross.get("received_bps"):
        bad.insert(0, f"the cross-traffic did not run: {cross.get('error') or 'nothing received'}")
    if not rows:
        bad.append("no intended flow shares a link with the cross-traffic: nothing to measure")
    if bad:
        return CheckResult("fault", name, "fail", "; ".join(bad[:4]), metrics)
    return CheckResult("fault", name, "pass",
                       f"{cross['received_bps'] / 1e6:.1f} Mbit/s of cross-traffic ({cross_slice}) beside "
                       f"{len(rows)} flow(s): {m['other_slice_flows']} of other slices kept within their budgets "
                       f"(round trip p95 up by at most {m['rtt_p95_added_ms_max']} ms)", metrics)


def _late(row: dict[str, Any]) -> str:
    """How many of a flow's lost echoes were answered late: a queue on a loaded host, not a cut."""
    late = row.get("late", 0)
    return f" ({late} of them answered after more than {LATE_S:g} s)" if late else ""


def _flows_verdict(d: Drill, records: list[list[tuple[float, bool]]], pingers: list[Pinger]) -> CheckResult:
    f = d.fault
    n = len(d.affected)
    lates = [getattr(p, "late", []) for p in pingers]  # records given alone: no late answers
    lates += [[]] * (len(records) - len(lates))
    rows = [{"src": s, "dst": t, **measure(r, d.t_inject, d.t_restore, late)}
            for (s, t), r, late in zip(d.affected + d.control, records, lates)]
    hit, ctl = rows[:n], rows[n:]
    name = f"{f.name}: {f.type}" + (f" {f.target}" if f.target else "") + (
        f" {f.src} -> {f.dst} at {f.rate / 1e6:g} Mbit/s" if f.type == "congestion" and f.rate else "")
    metrics: dict[str, Any] = {"type": f.type, "target": f.target, "at_s": _at(f), "duration_s": _duration(f), "affected": hit, "control": ctl,
                               **d.before}
    if d.error:
        return CheckResult("fault", name, "fail", d.error, metrics)
    if f.type == "congestion":
        return _congestion_verdict(d, name, metrics, pingers)
    if not hit and f.type != "controller-kill":
        return CheckResult("fault", name, "fail", "no intended flow crosses the target: nothing to measure",
                           metrics)
    unrecovered = [f"{r['src']} -> {r['dst']}" for r in hit if not r["answered_after_restore"]]
    control_lost = [f"{r['src']} -> {r['dst']} lost {r['lost']}/{r['sent']}{_late(r)}" for r in ctl
                    if r["lost"] > UNTOUCHED_MAX_LOSS * max(1, r["sent"])]
    recov = [r["recovery_s"] for r in hit if r["recovery_s"] is not None]
    outage = [r["outage_s"] for r in hit if r["outage_s"] is not None]
    metrics["recovery_s_max"] = max(recov, default=None)
    metrics["outage_s_max"] = max(outage, default=None)
    metrics["lost"] = sum(r["lost"] for r in hit)
    if f.type == "controller-kill":
        # fail secure = the watched flows kept forwarding: no gap longer than FAIL_SECURE_MAX_GAP_S, and no
        # more loss than twice what an untouched flow may lose (the 5G path drops a few echoes under load,
        # spread out, whether or not a controller runs)
        lost = [f"{r['src']} -> {r['dst']} lost {r['lost']}/{r['sent']}{_late(r)}, longest gap {r['outage_s']} s"
                for r in hit
                if r["lost"] > 2 * CONTROL_MAX_LOSS * max(1, r["sent"])
                or (r["outage_s"] or 0.0) > FAIL_SECURE_MAX_GAP_S]
        ok = not lost and not control_lost
        return CheckResult("fault", name, "pass" if ok else "fail",
                           (f"fail secure: {len(hit)} flows kept forwarding while the controller was down; "
                            f"restarted and confirmed in {d.before.get('restart_s')} s") if ok else
                           "flows lost while the controller was down: " + "; ".join((lost + control_lost)[:5]),
                           metrics)
    if unrecovered or control_lost:
        why = ([f"not back within {RECOVERY_WINDOW_S:g} s of the restore: {', '.join(unrecovered[:5])}"]
               if unrecovered else []) + ([f"untouched flows lost echoes: {'; '.join(control_lost[:3])}"]
                                          if control_lost else [])
        return CheckResult("fault", name, "fail", "; ".join(why), metrics)
    return CheckResult("fault", name, "pass",
                       f"{len(hit)} affected flow(s) down for up to {metrics['outage_s_max']} s, back "
                       f"{metrics['recovery_s_max']} s after the restore ({metrics['lost']} echoes lost); "
                       f"{len(ctl)} untouched flow(s) kept going", metrics)
