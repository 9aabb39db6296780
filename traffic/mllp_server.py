"""An HL7 v2 receiver over MLLP: the HIS (port 2575) and the LIS (port 2576) of the alliance.

    python -m traffic.mllp_server --bind IP --port 2575 [--app HIS]

Each MLLP block (<VT> message <FS><CR>) is parsed as an HL7 v2 message
(python-hl7) and answered on the same connection with an original-mode ACK:
MSA|AA|<MSH-10 of the message> when it parses and carries a type and a control
id, MSA|AR (with an ERR segment) when it does not. That is what an interface
engine in front of a real HIS/LIS does first, and it is what a sender measures
(message -> ACK latency) and counts (AE/AR are errors).

Bounded: a block larger than --max-message is rejected and the connection
closed; at most --max-conns connections at once (more are closed on accept);
an idle connection is closed after --idle seconds. It logs per connection, not
per message. Runs until SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from hl7.mllp import InvalidBlockError, start_hl7_server

from traffic.hl7_messages import ack_for

log = logging.getLogger("mllp")


class Receiver:
    def __init__(self, app: str, max_conns: int, idle: float) -> None:
        self.app, self.max_conns, self.idle = app, max_conns, idle
        self.open = 0

    async def serve(self, reader, writer) -> None:
        peer = writer.get_extra_info("peername")
        if self.open >= self.max_conns:
            log.warning("refusing %s: %d connections open", peer, self.open)
            writer.close()
            return
        self.open += 1
        counts = {"AA": 0, "AR": 0}
        try:
            while True:
                try:
                    block = await asyncio.wait_for(reader.readblock(), self.idle)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break  # the sender closed (possibly mid-block)
                except asyncio.TimeoutError:
                    log.info("%s idle for %.0f s: closing", peer, self.idle)
                    break
                except (ValueError, InvalidBlockError) as exc:  # too large, or not an MLLP block
                    ack, _ = ack_for("", self.app)
                    writer.writeblock(ack.encode())
                    await writer.drain()
                    log.warning("%s: %s: closing", peer, exc)
                    counts["AR"] += 1
                    break
                ack, code = ack_for(block.decode("utf-8", errors="replace"), self.app)
                counts[code] += 1
                writer.writeblock(ack.encode())
                await writer.drain()
        finally:
            self.open -= 1
            writer.close()
            log.info("connection from %s closed: %d accepted, %d rejected", peer, counts["AA"], counts["AR"])


async def run(args: argparse.Namespace) -> None:
    rx = Receiver(args.app, args.max_conns, args.idle)
    server = await start_hl7_server(rx.serve, args.bind, args.port, limit=args.max_message)
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
