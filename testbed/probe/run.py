"""Run the isolation probe on a running testbed: the full matrix, then the attacks.

    results = run_probes(tb)   # list[CheckResult]

Phases (captures run at every host throughout; a capture at the target decides
whether a packet arrived, never the lack of a reply):
  1. matrix: one sender per source host, all concurrent. Should-pass rows use the
     kernel's own sockets (real ARP, real TCP handshakes against listeners on the
     service ports, ICMP echo); must-fail rows are crafted frames with the real
     addresses of both ends (an attacker knows the target's MAC; we test the
     data plane, not ARP obscurity). Should-pass rows that did not arrive are
     tried once more with more retries before being called FALSE BLOCK. Each
     should-pass row also gets a crafted twin frame: if those do not all arrive,
     the network is losing probe frames and the `delivery control` row fails,
     because then a must-fail frame that was not captured proves nothing.
     Senders are paced (PACE_PPS in aggregate) so the burst does not overflow
     the userspace relays.
  2. attacks (spoofing, ARP poisoning, double tagging, broadcast; on a 5G path the GTP-U
     attacks of gtpu.py and a rogue UE with an unknown SUPI, rogue.py) and evasions (the other
     direction of every grant: reverse connections, source-port tricks, TCP flag scans,
     unsolicited replies, fragments; see evasions.py), concurrent and paced;
     neighbour entries the attacks may have poisoned are flushed afterwards.
  3. floods, one slice at a time (they would share the CPU otherwise).
  4. the topology file's script probes (a tester's own Scapy scripts, script.py).
Results: kind `isolation` per matrix row (detail LEAK / FALSE BLOCK on failure),
`attack:forbidden-port` for the matrix's forbidden-port rows, `attack:<kind>`
for the others, `probe:script` per script probe and pair.
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict

from traffic import packets as P

from testbed.checks.result import CheckResult
from testbed.events import Emitter, EventSink
from testbed.probe.agents import SYNC_TIMEOUT_S, Captures, arrival_index, host_interfaces, send_all, tunnel_arrivals
from testbed.probe.gtpu import plan_gtpu_attacks
from testbed.probe.rogue import rogue_ue
from testbed.slicing.flows import IP_PROTO
from testbed.probe.attacks import (FLOOD_CONCLUSIVE, FLOOD_FACTOR, FLOOD_MAX_BPS, FLOOD_MIN_FACTOR, FLOOD_SECONDS, METER_TOLERANCE,
                                   NO_RAN,
                                   Attack, Hosts, plan_attacks)
from testbed.probe.evasions import counts as evasion_counts, plan_evasions
from testbed.probe.matrix import Probe, build_matrix
from testbed.probe.script import plan_scripts, run_scripts
from testbed.probe.sessions import ue_routes
from testbed.ran.network import run_policy

SETTLE_S = 1.0  # after the last packet, before reading captures (userspace datapath and relays)
PACE_PPS = 2000  # aggregate packets/s of all matrix senders: what relays and OVS carry on 2 shared cores
MAX_SPREAD_S = 15.0
DELIVERY_MIN = 0.99


def _hosts(tb) -> Hosts:
    return Hosts({n: str(i.ip) for n, i in tb.layout.ips.items()}, dict(tb.layout.macs), ue_routes(tb))


def twin_id(row_id: str) -> str:
    """Token of a should-pass row's crafted twin ('t' is not hex: never a row id)."""
    return "t" + row_id[1:]


def _crafted(r: Probe, h: Hosts, pid: str) -> bytes:
    s, d, tok = r.src, r.dst, P.token(pid)
    sport = 20000 + int(r.id, 16) % 40000
    if r.proto == "tcp":
        return P.tcp_frame(h.mac[s], h.mac[d], h.ip[s], h.ip[d], sport, r.port, tok)
    if r.proto == "udp":
        return P.udp_frame(h.mac[s], h.mac[d], h.ip[s], h.ip[d], sport, r.port, tok)
    return P.icmp_frame(h.mac[s], h.mac[d], h.ip[s], h.ip[d], (int(r.id, 16) + 0x8000) & 0xFFFF, tok)


def _matrix_jobs(rows: list[Probe], h: Hosts, rounds: int, connect_timeout: float,
                 twins: bool = True) -> dict[str, dict]:
    """Per source: kernel sockets for should-pass rows (plus a crafted twin of each, the
    delivery control), crafted frames for must-fail rows; paced over `spread` seconds."""
    jobs: dict[str, dict] = defaultdict(lambda: {"frames": [], "connects": [], "udp": [], "pings": [],
                                                 "rounds": rounds, "gap": 0.3, "connect_timeout": connect_timeout})
    for r in rows:
        j, tok = jobs[r.src], P.token(r.id)
        if r.expect == "pass":  # the kernel's own stack, as an application would
            if r.proto == "tcp":
                j["connects"].append([h.ip[r.dst], r.port, r.id])
            elif r.proto == "udp":
                j["udp"].append([h.ip[r.dst], r.port, tok.hex()])
            else:
                j["pings"].append([h.ip[r.dst], int(r.id, 16) & 0xFFFF, tok.hex()])
            if twins:
                j["frames"].append(_crafted(r, h, twin_id(r.id)).hex())
        else:  # crafted, with both ends' real addresses
            j["frames"].append(_crafted(r, h, r.id).hex())
    total = sum(len(j["frames"]) + len(j["udp"]) + len(j["pings"]) for j in jobs.values())
    spread = min(MAX_SPREAD_S, total / PACE_PPS)
    for j in jobs.values():
        j["spread"] = spread
    return dict(jobs)


def _merge_sent(first: dict, again: dict) -> dict:
    """A source's sender report after its rows went again: a row connected in either round connected
    (connects are should-pass rows only), else the later outcome stands."""
    out = {**first, **{k: v for k, v in again.items() if k != "connects"}}
    if "error" in first and "error" not in again:  # the first round's crash (why its twins were lost) is over
        out["first_round_error"] = out.pop("error")
    a, b = first.get("connects", {}), again.get("connects", {})
    out["connects"] = {k: "connected" if "connected" in (a.get(k), b.get(k)) else b.get(k, a.get(k))
                       for k in {**a, **b}}
    return out


def _delivery_control(rows: list[Probe], tokens: dict[str, set[str]], seconds: float,
                      resent: dict | None = None) -> CheckResult:
    """Crafted twins of granted flows must all arrive; if they do not, the network loses
    probe frames, and a must-fail frame that was not captured proves nothing. `resent`: the
    first round's metrics, when the sources that lost twins then sent all their rows again."""
    twins = [r for r in rows if r.expect == "pass"]
    lost = [r for r in twins if r.dst not in tokens.get(twin_id(r.id), set())]
    n = len(twins)
    ratio = (n - len(lost)) / n if n else 1.0
    by_source, twins_of = Counter(r.src for r in lost), Counter(r.src for r in twins)
    m = {"sent": f"{n} crafted frames of granted flows", "arrived": n - len(lost), "lost": len(lost),
         "ratio": round(ratio, 4), "lost_examples": [r.name for r in lost[:10]],
         "lost_by_source": {src: f"{k} of {twins_of[src]}" for src, k in by_source.items()},
         "verdict": "pass" if ratio >= DELIVERY_MIN else "UNRELIABLE"}
    again = ""
    if resent is not None:
        m["first_round"] = {k: resent[k] for k in ("arrived", "lost", "lost_by_source")}
        again = (f" (after {', '.join(sorted(resent['lost_by_source']))} sent all their probes again: "
                 f"{resent['lost']} of their twins were lost the first time)")
    if ratio >= DELIVERY_MIN:
        return CheckResult("isolation", "delivery control", "pass",
                           f"{n - len(lost)}/{n} crafted frames of granted flows arrived: the probe frames "
                           f"are not lost in transit{again}", m, seconds)
    where = "; ".join(f"{src} {m['lost_by_source'][src]}" for src, _ in by_source.most_common(3))
    return CheckResult("isolation", "delivery control", "fail",
                       f"only {n - len(lost)}/{n} crafted frames of granted flows arrived: frames are lost in "
                       f"transit, so must-fail probes that were not captured prove nothing (overloaded host?); "
                       f"lost from {where}{'; ...' if len(by_source) > 3 else ''}{again}", m, seconds)


def _row_state(r: Probe, h: Hosts, flows: dict[str, dict], sent: dict[str, dict]) -> tuple[bool, bool, str]:
    """(captured at the target, outcome ok-for-a-pass-row-or-leak, note).

    For should-pass rows the return path counts too (replies are implied by a
    grant): a TCP handshake must complete, an echo reply must reach the source.
    """
    key = (h.src_ip(r.src, r.dst), h.ip[r.dst], IP_PROTO[r.proto], r.port if r.proto != "icmp" else 8)
    arrived = bool(flows.get(r.dst, {}).get(key, set()) & {None, r.id})
    note = ""
    if r.expect == "pass" and arrived:
        if r.proto == "tcp":
            st = sent.get(r.src, {}).get("connects", {}).get(r.id, "not attempted")
            note = f"connect {st}"
            if st != "connected":
                return True, False, f"SYN captured at {r.dst} but the handshake did not complete ({st})"
        elif r.proto == "icmp":
            back = r.id in flows.get(r.src, {}).get((h.ip[r.dst], h.src_ip(r.src, r.dst), 1, 0), set())
            note = "echo reply captured at source" if back else ""
            if not back:
                return True, False, f"echo request captured at {r.dst} but no echo reply reached {r.src}"
    return arrived, arrived, note


def _matrix_result(r: Probe, arrived: bool, ok_arrived: bool, note: str, tries: int, seconds: float) -> CheckResult:
    sent = ("kernel " + ("TCP connect" if r.proto == "tcp" else "UDP datagram" if r.proto == "udp" else "ICMP echo")
            if r.expect == "pass" else f"crafted {r.proto} frame") + f", token {r.id}"
    if r.expect == "pass":
        verdict = "pass" if ok_arrived else "FALSE BLOCK"
        detail = (f"arrived at {r.dst} ({r.why})" + (f"; {note}" if note else "")) if ok_arrived else \
                 f"FALSE BLOCK: {note or f'not captured at {r.dst}'} after {tries} tries ({r.why})"
    else:
        verdict = "LEAK" if ok_arrived else "pass"
        detail = f"LEAK: captured at {r.dst} ({r.why})" if ok_arrived else f"blocked, not captured at {r.dst} ({r.why})"
    kind = "attack:forbidden-port" if r.category == "port" else "isolation"
    return CheckResult(kind, f"{r.name} (expect {r.expect})", "pass" if verdict == "pass" else "fail", detail,
                       {"id": r.id, "category": r.category, "expect": r.expect, "sent": sent,
                        "captured_at": [r.dst] if arrived else [],
                        "verdict": verdict}, seconds)


def _arp_cleanup(tb, attacks: list[Attack], h: Hosts) -> dict[str, bool]:
    """Did the unicast ARP poisonings take (victim's neighbour entry = attacker MAC)? Then forget them."""
    poisoned: dict[str, bool] = {}
    for a in attacks:
        if a.kind == "arp-poison" and len(a.flush_arp) == 1:
            victim, ip = a.flush_arp[0]
            out = tb.node(victim).run(["ip", "neigh", "show", "to", ip], timeout=10).stdout
            poisoned[a.id] = h.mac[a.src] in out.lower()
    per_host: dict[str, set[str]] = defaultdict(set)
    for a in attacks:
        for host, ip in a.flush_arp:
            per_host[host].add(ip)
    for host, ips in per_host.items():
        tb.node(host).run(["sh", "-c", "; ".join(f"ip neigh flush to {ip}" for ip in sorted(ips)) + "; true"],
                          timeout=10)
    return poisoned


def _attack_result(a: Attack, tokens: dict[str, set[str]], sent: dict, poisoned: dict[str, bool],
                   seconds: float) -> CheckResult:
    err = sent.get(a.src, {}).get("error")
    seen = sorted(tokens.get(a.id, set()))
    leaks = sorted(set(seen) & set(a.forbidden_at))
    metrics = {"id": a.id, "sender": a.src, "sent": a.sent, "captured_at": seen, "watched": len(a.forbidden_at),
               "verdict": "LEAK" if leaks else "blocked"}
    if a.id in poisoned:
        metrics["neighbour_entry_poisoned"] = poisoned[a.id]
    if err:
        return CheckResult(f"attack:{a.kind}", a.name, "fail", f"sender failed: {err}", metrics, seconds)
    if leaks:
        more = f" (+{len(leaks) - 5} more)" if len(leaks) > 5 else ""
        detail = f"LEAK: captured at {', '.join(leaks[:5])}{more}"
        if poisoned.get(a.id):
            detail += "; the victim's ARP cache was poisoned"
        return CheckResult(f"attack:{a.kind}", a.name, "fail", detail, metrics, seconds)
    return CheckResult(f"attack:{a.kind}", a.name, "pass",
                       f"blocked: not captured at any of {len(a.forbidden_at)} watched host(s)", metrics, seconds)


def _rx_bytes(tb, host: str, intf: str) -> int:
    """Bytes the host's interface received so far (kernel counter: counts what the capture may miss)."""
    r = tb.node(host).run(["ip", "-s", "-j", "link", "show", "dev", intf], timeout=10)
    try:
        return int(json.loads(r.stdout)[0]["stats64"]["rx"]["bytes"])
    except (ValueError, KeyError, IndexError):
        return 0


def _flood_result(a: Attack, sent: dict, rx_delta: int, summary: dict[str, dict], seconds: float) -> CheckResult:
    """Arrived = the larger of the interface's byte counter delta and the bytes the capture matched:
    a Python capture drops frames at high rates, the counter does not."""
    fl = sent.get("flood") or {}
    captured = sum(f["bytes"] for f in summary.get(a.flood_target, {}).get("frames", []) if f.get("token") == a.id)
    recv = max(rx_delta, captured)
    dur = fl.get("seconds") or FLOOD_SECONDS
    recv_bps = recv * 8 / dur
    m = {"id": a.id, "sender": a.src, "sent": a.sent, "captured_at": [a.flood_target] if captured else [],
         "rate_bps": a.rate_bps, "sent_bps": round(fl.get("sent_bps", 0.0)), "received_bps": round(recv_bps),
         "captured_bytes": captured, "rx_bytes_delta": rx_delta, "frames_sent": fl.get("sent", 0)}
    if not fl:
        m["verdict"] = "error"
        return CheckResult("attack:flood", a.name, "fail", f"flood not sent: {sent.get('error', 'no report')}", m,
                           seconds)
    if fl["sent_bps"] < FLOOD_MIN_FACTOR * a.rate_bps:
        m["verdict"] = "untested"
        return CheckResult("attack:flood", a.name, "skip", f"could only send {fl['sent_bps'] / 1e6:.1f} Mbit/s, "
                           f"not enough above the {a.rate_bps / 1e6:g} Mbit/s rate to test the meter", m, seconds)
    if recv_bps < FLOOD_CONCLUSIVE * a.rate_bps:
        m["verdict"] = "inconclusive"
        return CheckResult("attack:flood", a.name, "skip",
                           f"inconclusive: sent {fl['sent_bps'] / 1e6:.1f} Mbit/s but the path carried only "
                           f"{recv_bps / 1e6:.1f} Mbit/s, below the {a.rate_bps / 1e6:g} Mbit/s slice rate: "
                           "congestion, not the meter, limited it", m, seconds)
    held = recv_bps <= METER_TOLERANCE * a.rate_bps
    m["verdict"] = "meter held" if held else "LEAK"
    detail = (f"sent {fl['sent_bps'] / 1e6:.1f} Mbit/s, {recv_bps / 1e6:.1f} Mbit/s arrived at {a.flood_target} "
              f"(slice rate {a.rate_bps / 1e6:g} Mbit/s)")
    return CheckResult("attack:flood", a.name, "pass" if held else "fail",
                       detail if held else f"LEAK: meter does not hold: {detail}", m, seconds)


def run_probes(tb, on_event: EventSink | None = None, attacks: bool = True,
               scripts: bool = True) -> list[CheckResult]:
    """Probe isolation on a running Testbed; one CheckResult per matrix row, per attack and per
    script probe of the topology file (testbed.probe.script; `scripts=False` leaves them out)."""
    emit = Emitter(on_event)
    t0 = time.monotonic()
    pol = run_policy(tb.topo, getattr(tb, "ran", None))
    h = _hosts(tb)
    rows = build_matrix(tb.topo, pol)
    plan = plan_attacks(tb.topo, pol, h) if attacks else []
    ran = getattr(tb, "ran", None)
    if attacks and ran is not None:
        plan += plan_gtpu_attacks(ran, pol, h)
    evasions = plan_evasions(pol, h, rows) if attacks else []
    plan += evasions
    listen = {n.name: sorted({s.port for s in n.services if s.proto == "tcp"}) for n in tb.topo.hosts}
    caps = Captures(tb, listen, max_seconds=600.0)
    emit.stage("probe-agents", "starting capture agents", total=len(caps.ifaces))
    caps.start(on_progress=lambda d, t: emit.progress("probe-agents", d, t))
    emit.done("probe-agents", f"{len(caps.ifaces)} capture agents")
    results: list[CheckResult] = []
    try:
        emit.stage("probe-matrix", f"{len(rows)} matrix probes")
        t_m = time.monotonic()
        sent = send_all(tb, _matrix_jobs(rows, h, rounds=2, connect_timeout=3.0), timeout=60)
        time.sleep(SETTLE_S)
        flows, tokens = arrival_index(caps.snapshot())
        control = _delivery_control(rows, tokens, time.monotonic() - t_m)
        if control.failed:
            # A source whose crafted twins were lost (a UE re-registering after a radio link loss on an
            # overloaded host: its sessions were down) proved none of its must-fail rows either. All its
            # rows go again, twins included; captures accumulate, so a leak in either round still counts,
            # and a source that loses its frames again fails the control again.
            again = sorted(control.metrics["lost_by_source"])
            emit.info(f"re-sending the probes of {', '.join(again)}: their crafted twins of granted flows were lost")
            sent_again = send_all(tb, _matrix_jobs([r for r in rows if r.src in again], h, rounds=2,
                                                   connect_timeout=3.0), timeout=60)
            time.sleep(SETTLE_S)
            for src in again:
                sent[src] = _merge_sent(sent.get(src, {}), sent_again.get(src, {}))
            flows, tokens = arrival_index(caps.snapshot())
            control = _delivery_control(rows, tokens, time.monotonic() - t_m, resent=control.metrics)
        state = {r.id: _row_state(r, h, flows, sent) for r in rows}
        retry = [r for r in rows if r.expect == "pass" and not state[r.id][1]]
        tries = {r.id: 1 for r in rows}
        if retry:
            emit.info(f"retrying {len(retry)} should-pass probe(s) that did not arrive")
            sent2 = send_all(tb, _matrix_jobs(retry, h, rounds=4, connect_timeout=5.0, twins=False), timeout=60)
            time.sleep(SETTLE_S)
            flows, _ = arrival_index(caps.snapshot())
            for r in retry:
                state[r.id] = _row_state(r, h, flows, sent2)
                tries[r.id] = 2
        errors = {n: s["error"] for n, s in sent.items() if s.get("error")}
        for n, e in errors.items():
            emit.warning(f"matrix sender in {n} failed: {e}")
        if caps.lagging:
            emit.warning(f"capture agents in {', '.join(sorted(caps.lagging))} had not caught up "
                         f"{SYNC_TIMEOUT_S:.0f} s after the matrix: what reached them last may be missing")
        m_s = time.monotonic() - t_m
        for r in rows:
            results.append(_matrix_result(r, *state[r.id], tries[r.id], m_s))
        results.append(control)
        if control.failed:
            emit.warning(control.detail)
        bad = sum(c.failed for c in results)
        emit.done("probe-matrix", f"{len(rows)} probes in {m_s:.1f}s, {bad} failed", failed=bad)

        if plan:
            emit.stage("probe-attacks", f"{len(plan)} attack probes")
            t_a = time.monotonic()
            oneshot = [a for a in plan if a.kind != "flood"]
            if evasions:
                emit.info("evasion probes: " + ", ".join(f"{k} {c['rows']} ({c['frames']} frames)"
                                                         for k, c in evasion_counts(evasions).items()))
            jobs: dict[str, dict] = defaultdict(lambda: {"frames": [], "rounds": 2, "gap": 0.3})
            for a in oneshot:
                jobs[a.src]["frames"] += [f.hex() if a.via is None else [a.via, f.hex()] for f in a.frames]
            spread = min(MAX_SPREAD_S, sum(len(j["frames"]) for j in jobs.values()) / PACE_PPS)
            for j in jobs.values():
                j["spread"] = spread  # paced like the matrix: one burst from every node overflows the relays
            asent = send_all(tb, dict(jobs), timeout=60)
            time.sleep(SETTLE_S)
            snap = caps.snapshot()
            _, tokens = arrival_index(snap)
            tunnelled = tunnel_arrivals(snap)
            poisoned = _arp_cleanup(tb, oneshot, h)
            a_s = time.monotonic() - t_a
            for a in oneshot:
                seen = {a.id: tokens.get(a.id, set()) | (tunnelled.get(a.id, set()) & set(a.tunnelled_at))}
                results.append(_attack_result(a, seen, asent, poisoned, a_s))
            if ran is not None:
                results += rogue_ue(tb)
            floods = [a for a in plan if a.kind == "flood"]
            fsent: dict[str, dict] = {}
            rx: dict[str, int] = {}
            ifaces = host_interfaces(tb)
            for i, a in enumerate(floods):
                emit.progress("probe-attacks", i, len(floods), "floods")
                job = {"frames": [], "rounds": 0, "flood": {
                    "frame": a.frames[0].hex(), "rate_bps": min(FLOOD_FACTOR * a.rate_bps, FLOOD_MAX_BPS),
                    "seconds": FLOOD_SECONDS, "max_count": int(FLOOD_MAX_BPS * FLOOD_SECONDS / 8 / len(a.frames[0]))}}
                before = _rx_bytes(tb, a.flood_target, ifaces[a.flood_target])
                fsent[a.id] = send_all(tb, {a.src: job}, timeout=FLOOD_SECONDS + 30)[a.src]
                time.sleep(SETTLE_S)
                rx[a.id] = _rx_bytes(tb, a.flood_target, ifaces[a.flood_target]) - before
        if scripts:
            results += run_scripts(tb, plan_scripts(tb.topo.probes, tb.source), caps, on_event)
    finally:
        caps.stop()
    if plan:
        for a in floods:
            results.append(_flood_result(a, fsent.get(a.id, {}), rx.get(a.id, 0), caps.summary,
                                         time.monotonic() - t_a))
        if not floods:
            results.append(CheckResult("attack:flood", "slice rate (meter)", "skip",
                                       "no slice declares a rate: nothing to flood beyond"))
        if ran is None:
            results.append(CheckResult("attack:gtpu-teid", "gtpu-teid", "skip", NO_RAN))
        attack_rows = [c for c in results if c.kind.startswith("attack:")]
        failed = sum(c.failed for c in attack_rows)
        emit.done("probe-attacks", f"{len(attack_rows)} attack probes, {failed} failed", failed=failed)
    emit.info(f"isolation probe: {len(results)} results in {time.monotonic() - t0:.1f}s")
    return results
