"""Measuring slice churn under load: a SYN stream from the churned member, captured where it would arrive,
judged against the times each revocation was in force; and the unaffected members' pings.

The stream: one new TCP connection attempt to the target service every 10 ms
(each a fresh SYN; a socket is dropped after 0.4 s, before the kernel would
retransmit its SYN). Every output goes to a file, never a pipe: in a churn of
minutes an undrained pipe fills and stalls the writer. The capture: tcpdump on the target's switch port in the
root namespace, so a frame counts only once the switch forwarded it to the
target. A revocation is in force from the moment `change_membership` returned
(every switch confirmed the new plan) until the next grant is asked for; a SYN
seen at the target inside such a window (after a small grace for frames
already inside the userspace datapath) is a leak.
"""
from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path
from dataclasses import dataclass, field

GRACE_S = 0.02

SYN_STREAM = r"""
import socket, sys, time
ip, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
open_, end, sent = [], time.monotonic() + seconds, 0
while time.monotonic() < end:
    s = socket.socket(); s.setblocking(False)
    s.connect_ex((ip, port)); sent += 1
    open_.append((time.monotonic(), s))
    while open_ and time.monotonic() - open_[0][0] > 0.4:
        open_.pop(0)[1].close()
    time.sleep(0.01)
print(sent, flush=True)
"""


def capture_argv(intf: str, src_ip: str, port: int) -> list[str]:
    """tcpdump printing one line per SYN from `src_ip` to `port` leaving the switch on `intf` (epoch times)."""
    return ["tcpdump", "-i", intf, "-nn", "-tt", "-l", "-Q", "out", "-p",
            f"src host {src_ip} and tcp dst port {port} and tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0"]


def start_capture(intf: str, src_ip: str, port: int, out: Path) -> subprocess.Popen:
    """tcpdump (capture_argv) running on the host, writing to `out` (a file: a pipe nobody drains during a
    long churn would fill and stall it), returned once it says it is listening."""
    with open(out, "w") as fh:
        cap = subprocess.Popen(capture_argv(intf, src_ip, port), stdout=fh, stderr=subprocess.PIPE, text=True)
    said: list[str] = []
    listening = threading.Event()

    def watch() -> None:
        for line in cap.stderr:
            said.append(line)
            if "listening on" in line:
                listening.set()

    threading.Thread(target=watch, daemon=True).start()
    if listening.wait(10.0):
        return cap
    cap.kill()
    raise RuntimeError(f"tcpdump on {intf} did not start: {''.join(said)}")


def syn_times(tcpdump_out: str) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(r"^(\d+\.\d+) ", tcpdump_out, re.M)]


@dataclass
class Windows:
    """Epoch-time windows of one member's state: revoked (must block) and granted (may pass)."""

    revoked: list[tuple[float, float]] = field(default_factory=list)
    granted: list[tuple[float, float]] = field(default_factory=list)

    def leaks(self, arrivals: list[float], grace: float = GRACE_S) -> list[float]:
        return [t for t in arrivals if any(a + grace <= t < b for a, b in self.revoked)]

    def passed_while_granted(self, arrivals: list[float]) -> int:
        return sum(1 for t in arrivals if any(a <= t < b for a, b in self.granted))

    def revoked_seconds(self, grace: float = GRACE_S) -> float:
        return sum(max(0.0, b - a - grace) for a, b in self.revoked)


@dataclass
class PingLoss:
    sent: int
    received: int
    lost_seqs: list[int]  # not answered, excluding the last `tail` ones still in flight at the stop


def ping_loss(output: str, tail: int = 20) -> PingLoss:
    """From `ping -i 0.01` output stopped by SIGINT: which echo requests got no reply."""
    m = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    sent, received = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    seen = {int(x) for x in re.findall(r"icmp_seq=(\d+) ttl=", output)}
    return PingLoss(sent, received, [s for s in range(1, max(0, sent - tail) + 1) if s not in seen])


def stop(proc: subprocess.Popen, sig: int, timeout: float = 10.0) -> None:
    """Signal a process and wait for it (SIGKILL if it ignores the signal)."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
