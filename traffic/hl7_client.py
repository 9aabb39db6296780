"""Send HL7 v2 messages over MLLP at a steady rate and time each ACK; print one JSON document.

    python -m traffic.hl7_client --host IP --port 2575 --interval 0.1 --duration 5
        [--types ADT^A01,ORU^R01] [--timeout 5] [--receiver HIS]

One TCP connection per sender, as an interface engine keeps one per link, and
one acknowledgement per message: each message asks, in enhanced mode, for an
accept acknowledgement and no application acknowledgement (MSH-15 AL, MSH-16
NE), is sent, its ACK awaited, then the next one goes out at its scheduled time
(t0 + k * interval; a late ACK delays the next message, it does not cause a
burst). The latency sample is send -> ACK. Success is CA (the receiver has
taken the message), or AA from a receiver that only knows original mode; a
CE/CR (or AE/AR) acknowledgement, an ACK for another control id, or no ACK
within --timeout is an error; after a timeout the connection is replaced (the
stream can no longer be trusted to pair ACKs with messages).

Output (stdout): {"latency_ms": [...], "sent", "received", "acks": {code: n}, "errors": [...], "connects"}.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

from traffic.hl7_messages import END, START, TYPES, build, frame, parse_ack

MAX_ERRORS = 20
MAX_ACK = 1 << 16
# What the messages ask for (MSH-15 AL, MSH-16 NE: see hl7_messages._msh) is one accept ACK: CA. A receiver
# in original mode ignores those fields and answers AA, which also means the message was taken.
SUCCESS = ("CA", "AA")


class Link:
    """One MLLP connection: send a block, read one block back within a timeout."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def exchange(self, block: bytes, deadline: float) -> str:
        self.sock.sendall(block)
        while True:
            end = self.buf.find(END)
            if end >= 0:
                raw, self.buf = self.buf[:end], self.buf[end + len(END):]
                raw = raw.lstrip(b" \t\r\n")  # whitespace between blocks (a CRLF after <FS><CR>) is no error
                if not raw.startswith(START):
                    raise ValueError("reply is not an MLLP block")
                return raw[1:].decode("utf-8", errors="replace")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no ACK in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the receiver")
            self.buf += chunk
            if len(self.buf) > MAX_ACK:
                raise ValueError("reply larger than any ACK")

    def close(self) -> None:
        self.sock.close()


def run(args: argparse.Namespace) -> dict:
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    out: dict = {"latency_ms": [], "sent": 0, "received": 0, "acks": {}, "errors": [], "connects": 0}

    def error(text: str) -> None:
        if len(out["errors"]) < MAX_ERRORS:
            out["errors"].append(text)
        elif len(out["errors"]) == MAX_ERRORS:
            out["errors"].append("... more errors not listed")

    count = max(1, int(args.duration / args.interval))
    t0 = time.monotonic()
    link: Link | None = None
    tag = f"{os.getpid() % 10000:04d}"
    for k in range(count):
        due = t0 + k * args.interval
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        if time.monotonic() > t0 + args.duration + args.timeout:
            break  # the run's time is up (slow ACKs): stop, do not queue
        control = f"{args.sender[:6]}{tag}{k:08d}"
        msg_type = types[k % len(types)]
        block = frame(build(msg_type, control, args.patient_id, k + 1, args.sender, args.receiver))
        out["sent"] += 1
        try:
            if link is None:
                link = Link(args.host, args.port, args.timeout)
                out["connects"] += 1
            ts = time.monotonic()
            reply = link.exchange(block, ts + args.timeout)
            ms = (time.monotonic() - ts) * 1000
        except (OSError, ValueError) as exc:  # TimeoutError is an OSError
            error(f"message {k + 1} ({msg_type}): {exc or type(exc).__name__}")
            if link is not None:
                link.close()
                link = None
            continue
        try:
            code, acked = parse_ack(reply)
        except Exception as exc:  # noqa: BLE001 - an unparsable ACK is the receiver's error
            error(f"message {k + 1}: unparsable ACK: {exc}")
            continue
        out["acks"][code] = out["acks"].get(code, 0) + 1
        if acked != control:
            error(f"message {k + 1}: ACK for control id {acked!r}, sent {control!r}")
        elif code not in SUCCESS:
            error(f"message {k + 1} ({msg_type}): {code}")
        else:
            out["received"] += 1
            out["latency_ms"].append(ms)
    if link is not None:
        link.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=2575)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between messages")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds of sending")
    ap.add_argument("--types", default="ADT^A01,ORU^R01", help=f"comma-separated, of {', '.join(TYPES)}")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each ACK")
    ap.add_argument("--sender", default="TESTBED")
    ap.add_argument("--receiver", default="HIS")
    ap.add_argument("--patient-id", default="P000001")
    args = ap.parse_args(argv)
    bad = [t for t in args.types.split(",") if t.strip() and t.strip() not in TYPES]
    if bad or args.interval <= 0:
        ap.error(f"unknown message type(s) {bad}" if bad else "interval must be > 0")
    json.dump(run(args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
