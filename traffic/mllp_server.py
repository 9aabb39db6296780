"""An HL7 v2 receiver over MLLP: the HIS (port 2575) and the LIS (port 2576) of the alliance.

    python -m traffic.mllp_server --bind IP --port 2575 [--app HIS]

Each MLLP block (<VT> message <FS><CR>) is read as an HL7 v2 message (LF or
CRLF segment separators are read as CR, as most engines do), checked, parsed
(python-hl7) and answered on the same connection as HL7 v2 says
(traffic/hl7_messages.respond):

- original mode (MSH-15 and MSH-16 empty): MSA|AA|<MSH-10>, or MSA|AR with an
  ERR segment (HL7 table 0357: 100 segment sequence, 101 required field missing,
  102 data type, 103 table value, 104 too long, 200 unsupported message type,
  201 event, 202 processing id, 203 version, 207 internal error);
- enhanced mode: the accept acknowledgement (CA, CE, CR) when MSH-15 asks for
  it, then the application acknowledgement (AA) when MSH-16 asks for it;
- an acknowledgement (MSH-9 ACK, or any message carrying an MSA) is never
  acknowledged: that is how two engines end up in an ACK loop.

Supported: ADT^A01..A62, ORM^O01, ORU^R01; versions 2.3 to 2.8.2; processing
ids P, T, D. This is what an interface engine in front of a real HIS/LIS does
first, and what a sender measures (message -> ACK latency) and counts.

Framing is read leniently where engines differ and strictly where bytes would
be lost: whitespace between blocks (a CRLF after <FS><CR>, a blank line) is
skipped; other bytes outside a block are answered with one AR (100, "outside
an MLLP block") and skipped up to the next <VT>; a block cut short by a new
<VT> before its <FS> is refused (100) and the new block read. A block larger
than --max-message is refused (104) and the connection closed; at most
--max-conns connections at once (more are closed on accept); an idle
connection is closed after --idle seconds. It logs per connection, not per
message. Runs until SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections import Counter

from traffic.hl7_messages import Hl7Error, frame, respond

log = logging.getLogger("mllp")

VT, FS = 0x0B, 0x1C
WHITESPACE = b" \t\r\n"
MAX_WARNINGS = 3  # framing warnings logged per connection (the rest are counted)


class Deframer:
    """Cuts a TCP byte stream into MLLP blocks. `next()` gives (kind, bytes) or None (more bytes needed):
    "block" (a message), "junk" (non-whitespace bytes outside a block, up to the next <VT> or what has
    arrived), "unterminated" (a block a new <VT> cut short), "too-large" (its first --max-message bytes)."""

    def __init__(self, limit: int) -> None:
        self.buf = bytearray()
        self.limit = limit
        self.skipping = False  # the rest of a too-large block, up to its <FS>, is dropped

    def feed(self, data: bytes) -> None:
        if self.skipping:
            fs = data.find(FS)
            if fs < 0:
                return
            data, self.skipping = data[fs + 1:], False
        self.buf += data

    def next(self) -> tuple[str, bytes] | None:
        buf = self.buf
        i = 0
        while i < len(buf) and buf[i] in WHITESPACE:
            i += 1
        del buf[:i]
        if not buf:
            return None
        if buf[0] != VT:
            vt = buf.find(VT)
            end = vt if vt >= 0 else len(buf)
            junk = bytes(buf[:end])
            del buf[:end]
            return "junk", junk
        fs = buf.find(FS, 1)
        vt = buf.find(VT, 1, fs if fs >= 0 else len(buf))
        if vt >= 0:  # a new block starts before this one ended
            part = bytes(buf[1:vt])
            del buf[:vt]
            return ("too-large", part[:self.limit]) if len(part) > self.limit else ("unterminated", part)
        if fs < 0:
            if len(buf) - 1 > self.limit:
                part = bytes(buf[1:1 + self.limit])
                buf.clear()
                self.skipping = True
                return "too-large", part
            return None
        block = bytes(buf[1:fs])
        del buf[:fs + 1]  # the <CR> after <FS>, like any whitespace, is skipped by the next call
        return ("too-large", block[:self.limit]) if len(block) > self.limit else ("block", block)


class Receiver:
    def __init__(self, app: str, max_conns: int, idle: float, max_message: int) -> None:
        self.app, self.max_conns, self.idle, self.max_message = app, max_conns, idle, max_message
        self.open = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self.open >= self.max_conns:
            log.warning("refusing %s: %d connections open", peer, self.open)
            writer.close()
            return
        self.open += 1
        counts: Counter[str] = Counter()
        warnings = 0
        frames = Deframer(self.max_message)
        junk = 0  # bytes in the current run outside any block (answered once per run)

        def warn(text: str) -> None:
            nonlocal warnings
            warnings += 1
            if warnings <= MAX_WARNINGS:
                log.warning("%s: %s", peer, text)

        try:
            while True:
                event = frames.next()
                if event is None:
                    try:
                        data = await asyncio.wait_for(reader.read(65536), self.idle)
                    except asyncio.TimeoutError:
                        log.info("%s idle for %.0f s: closing", peer, self.idle)
                        break
                    except ConnectionError:
                        break
                    if not data:
                        break  # the sender closed (possibly mid-block)
                    frames.feed(data)
                    continue
                kind, payload = event
                text = payload.decode("utf-8", errors="replace")
                if kind == "junk":
                    counts["framing errors"] += junk == 0
                    if junk == 0:
                        warn(f"{len(payload)} bytes outside an MLLP block, skipped to the next <VT>")
                        replies = respond("", self.app, Hl7Error(
                            100, f"bytes outside an MLLP block (<VT> message <FS><CR>), skipped: {text[:40]!r}"))
                    else:
                        replies = []
                    junk += len(payload)
                    if junk > self.max_message:
                        warn(f"more than {self.max_message} bytes outside any MLLP block: closing")
                        break
                else:
                    junk = 0
                    if kind == "block":
                        replies = respond(text, self.app)
                    elif kind == "unterminated":
                        counts["framing errors"] += 1
                        warn("an MLLP block without <FS><CR> before the next <VT>")
                        replies = respond(text, self.app, Hl7Error(
                            100, "MLLP block not terminated by <FS><CR> before the next <VT>: refused"))
                    else:
                        warn(f"a message larger than {self.max_message} bytes: closing")
                        replies = respond(text, self.app, Hl7Error(
                            104, f"message larger than {self.max_message} bytes: refused, connection closed"))
                if kind != "junk" and not replies:
                    counts["unacknowledged"] += 1  # an ACK received, or enhanced mode asking for none
                for ack, code in replies:
                    counts[code] += 1
                    writer.write(frame(ack))
                try:
                    await writer.drain()
                except ConnectionError:
                    break
                if kind == "too-large":
                    break
        finally:
            self.open -= 1
            writer.close()
            log.info("connection from %s closed: %s", peer,
                     ", ".join(f"{n} {code}" for code, n in sorted(counts.items())) or "no messages")


async def run(args: argparse.Namespace) -> None:
    rx = Receiver(args.app, args.max_conns, args.idle, args.max_message)
    server = await asyncio.start_server(rx.serve, args.bind, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("%s: HL7 v2 over MLLP on %s:%d", args.app, args.bind, args.port)
    async with server:
        await stop.wait()
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=2575)
    ap.add_argument("--app", default="HIS", help="the receiving application named in ACKs (MSH-3)")
    ap.add_argument("--max-message", type=int, default=1 << 20, help="largest message accepted (bytes)")
    ap.add_argument("--max-conns", type=int, default=256)
    ap.add_argument("--idle", type=float, default=300.0, help="seconds before an idle connection is closed")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
