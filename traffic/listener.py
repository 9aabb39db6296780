"""TCP listeners on a node's service ports, so should-pass connects complete.

Each accepted connection is closed at once: the prober only needs the
handshake. Used by `traffic.sink --listen` (one process per node does both),
or on its own: `python -m traffic.listener --tcp 443 --tcp 104 --max-seconds 60`
(runs until stdin closes or the time is up).
"""
from __future__ import annotations

import argparse
import selectors
import socket
import sys
import threading
import time


class Listeners:
    """Accept-and-close on every given TCP port, in one background thread."""

    def __init__(self, ports: list[int]):
        self.sel = selectors.DefaultSelector()
        self.accepted: dict[int, int] = {p: 0 for p in ports}
        self.errors: dict[int, str] = {}
        self._stop = threading.Event()
        for p in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", p))
                s.listen(256)
            except OSError as exc:
                self.errors[p] = str(exc)
                s.close()
                continue
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, p)
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> "Listeners":
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.sel.select(0.2):
                try:
                    conn, _addr = key.fileobj.accept()
                    conn.close()
                    self.accepted[key.data] += 1
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(1.0)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tcp", type=int, action="append", default=[])
    ap.add_argument("--max-seconds", type=float, default=300.0)
    a = ap.parse_args(argv)
    ls = Listeners(a.tcp).start()
    print("READY", flush=True)
    end = time.monotonic() + a.max_seconds
    t = threading.Thread(target=sys.stdin.read, daemon=True)
    t.start()
    while t.is_alive() and time.monotonic() < end:
        t.join(0.2)
    ls.stop()
    print({"accepted": ls.accepted, "errors": ls.errors}, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
