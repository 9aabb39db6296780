"""Run a security tester's probe script inside a node; report which frames carrying its token left.

    python -m traffic.script_probe < job.json

The job (JSON on stdin):
  script    the tester's Python file; it runs as its own process with this interpreter
            (so Scapy imports), in the node, with `env` added to its environment
  iface     the node's interface: frames leaving it that carry `token` are counted
  token     the probe's token (TBP-xxxxxxxx): the script puts it in every frame it wants judged
  timeout   seconds the script may run; then it is killed (with its children)
  env       TESTBED_* variables for the script (see testbed/probe/script.py)

While the script runs, a packet socket on the interface watches outgoing frames: a capture at the
target can only call a probe blocked if it was sent, so the frames carrying the token that left
are counted, and the first few described. Prints one JSON object: rc, timed_out, seconds,
frames_with_token, sent (summaries), stdout and stderr tails.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from traffic.packets import parse

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
KEEP_SENT = 8  # distinct frame summaries kept for the report (with a count each)
TAIL = 2000  # characters of the script's stdout / stderr kept


class OutgoingTokens:
    """Count frames leaving `iface` that carry `token` (in a thread, until stop())."""

    def __init__(self, iface: str, token: bytes):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((iface, 0))
        self.sock.setblocking(False)
        self.token = token
        self.count = 0
        self.sent: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "OutgoingTokens":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            for _ in range(256):
                try:
                    frame, addr = self.sock.recvfrom(65535)
                except (BlockingIOError, OSError):
                    break
                if addr[2] == PACKET_OUTGOING and self.token in frame:
                    self.count += 1
                    summ = {k: v for k, v in parse(frame).items() if k not in ("token", "vlans", "type")}
                    same = next((s for s in self.sent if {**s, "count": 0} == {**summ, "count": 0}), None)
                    if same is not None:
                        same["count"] += 1
                    elif len(self.sent) < KEEP_SENT:
                        self.sent.append({**summ, "count": 1})

    def stop(self, drain: float = 0.3) -> None:
        time.sleep(drain)  # frames the script sent last may still be queued to this socket
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def run(job: dict) -> dict:
    token = job["token"].encode()
    watch = OutgoingTokens(job["iface"], token).start()
    env = dict(os.environ, **{k: str(v) for k, v in job.get("env", {}).items()})
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, job["script"]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=float(job.get("timeout", 60)))
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the script and whatever it started
        out, err = proc.communicate()
    seconds = time.monotonic() - t0
    watch.stop()
    return {"rc": proc.returncode, "timed_out": timed_out, "seconds": round(seconds, 3),
            "frames_with_token": watch.count, "sent": watch.sent,
            "stdout": (out or "")[-TAIL:], "stderr": (err or "")[-TAIL:]}


def main() -> int:
    print(json.dumps(run(json.loads(sys.stdin.read()))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
