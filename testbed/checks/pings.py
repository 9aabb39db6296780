"""Pinging a flow through a drill: one echo every 100 ms, each one's fate read back from `ping -D -O`.

A drill judges flows by these records (testbed.checks.faults): an echo
answered later than LATE_S counts as lost, as it would on a wire where it sat
queued behind a cut link; an echo the kernel could not even send (no carrier)
leaves a gap in the sequence numbers and counts as lost too.
"""
from __future__ import annotations

import re
import subprocess
from typing import Any

PING_INTERVAL_S = 0.1
LATE_S = 1.0  # an echo answered later than this was lost (queued behind a cut link, it would be, on a wire)
RECOVERY_WINDOW_S = 10.0


class Pinger:
    """`ping -D -O` from src to dst until stopped (bounded by `limit_s`): per echo, when and whether answered."""

    def __init__(self, tb, src: str, dst: str, limit_s: float):
        self.src, self.dst = src, dst
        ip = str(tb.layout.ips[dst].ip)
        count = int(limit_s / PING_INTERVAL_S) + 1
        self.proc = tb.node(src).popen(["ping", "-n", "-D", "-O", "-i", str(PING_INTERVAL_S), "-W", "1",
                                        "-c", str(count), ip], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       text=True)

    def stop(self) -> list[tuple[float, bool]]:
        """(time first seen, answered) per echo sequence number, in order."""
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.out = out
        self.late = late_sends(out)  # read once: drills sharing this pinger each count them in their window
        return parse_ping(out)


def parse_ping(out: str) -> list[tuple[float, bool]]:
    """`ping -D -O` output -> (time sent, answered in time) per icmp_seq."""
    return [(t, rtt is not None) for t, rtt in parse_rtts(out)]


def parse_rtts(out: str, keep_late: bool = False) -> list[tuple[float, float | None]]:
    """`ping -D -O` output -> (time sent, round trip in ms; None: lost or, unless `keep_late`, later than
    LATE_S) per icmp_seq."""
    seen: dict[int, list] = {}
    for line in out.splitlines():
        m = re.match(r"\[(\d+\.\d+)\] .*icmp_seq=(\d+)", line)
        if m:
            t, seq = float(m.group(1)), int(m.group(2))
            rtt = re.search(r"time=([\d.]+) ms", line)
            if rtt:  # a reply: the echo left rtt earlier; one held back longer than LATE_S counts as lost
                sent = t - float(rtt.group(1)) / 1000.0
                ms = float(rtt.group(1))
                seen[seq] = [sent, ms if keep_late or ms <= LATE_S * 1000.0 else None]
            else:
                seen.setdefault(seq, [t, None])
    if not seen:
        return []
    # An echo the kernel could not even send (no carrier) leaves no line: a gap in the sequence numbers.
    first = min(seen)
    base = seen[first][0] - first * PING_INTERVAL_S
    return [tuple(seen.get(q, (base + q * PING_INTERVAL_S, None))) for q in range(first, max(seen) + 1)]


def late_sends(out: str) -> list[float]:
    """`ping -D -O` output -> when each echo answered later than LATE_S was sent: counted lost, but the
    network held it in a queue (a host short of CPU), where a cut or a drop never answers."""
    return [sent for sent, ms in parse_rtts(out, keep_late=True) if ms is not None and ms > LATE_S * 1000.0]


def measure(echoes: list[tuple[float, bool]], t_inject: float, t_restore: float,
            late: list[float] = ()) -> dict[str, Any]:
    """Outage, recovery after the restore, and echoes lost, from one pinger's record (wall-clock times):
    only the drill's own window counts (from the injection to the end of the recovery window). `late`:
    the send times of the lost echoes that were answered late (late_sends), counted apart as well."""
    window = (t_inject - PING_INTERVAL_S, t_restore + RECOVERY_WINDOW_S)
    echoes = [(t, ok) for t, ok in echoes if window[0] <= t <= window[1]]
    lost = [t for t, ok in echoes if not ok]
    after = [t for t, ok in echoes if ok and t >= t_restore]
    first_loss = min((t for t in lost if t >= t_inject - PING_INTERVAL_S), default=None)
    back = min((t for t, ok in echoes if ok and first_loss is not None and t > first_loss), default=None)
    return {"sent": len(echoes), "lost": len(lost), "late": sum(1 for t in late if window[0] <= t <= window[1]),
            "outage_s": round(back - first_loss, 2) if first_loss is not None and back is not None else
            (0.0 if first_loss is None else None),
            "recovery_s": round(after[0] - t_restore, 2) if after else None,
            # from the injection to the first echo answered after the outage (a re-attach: before the restore)
            "back_s": round(back - t_inject, 2) if back is not None else (0.0 if first_loss is None else None),
            "answered_after_restore": bool(after)}


