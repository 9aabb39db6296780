"""Userspace impairment relay: forwards frames between two interfaces, impaired.

Run as its own process (`python -m testbed.impair.relay --if-a X --if-b Y ...`,
normally through `testbed.impair.userspace.start_relay`) because it must keep
forwarding while the builder does other work, and a separate process can be
stopped by PID without touching anything else.

Why it looks like this:
- Kernels without sch_netem (this platform, WSL2, minimal RHEL) still have
  AF_PACKET. Measured on a 2-core VM: ~0.7 Gbit/s TCP with per-packet frames
  (node ends' offloads off), ~4 Gbit/s when the node ends keep TSO on and we
  move GSO super-frames. The relay then spends ~80% of its core in the kernel
  (each send delivers into the peer namespace's stack), so Python is not the
  bottleneck.
- Sockets are created with protocol 0 (they receive nothing) and only then
  bound to their interface with ETH_P_ALL, so at no moment do they see frames of
  any other interface. PACKET_IGNORE_OUTGOING hides the frames we send ourselves.
  Apart from these two, the only socket is the unix control socket.
- Delayed frames wait in a FIFO per direction (constant delay and rate keep
  departures in order) or, when jitter may reorder them, in one heap ordered
  by departure time; the loop sleeps in
  select() exactly until the next departure (microsecond timeout, unlike
  epoll's milliseconds) or until a frame arrives, so it never busy-spins.
- Reads are non-blocking and drained in bounded batches so a flood in one
  direction cannot starve departures or the other direction.
- Every frame carries a virtio_net_hdr (PACKET_VNET_HDR): if the sender in a
  namespace still has checksum offload or TSO on, we receive "checksum not yet
  computed" or 64 KB GSO frames; passing the header back on send lets the
  kernel finish the checksum / segment on our (offload-off) egress instead of
  delivering a corrupt frame. That is why TCP no longer hangs when someone
  forgets ethtool on the far end. Per-packet loss/rate accuracy still wants
  tso/gso off on the far ends: a GSO frame is impaired as one unit.
- Frames of an unimpaired direction are sent straight from the receive buffer
  (no copy, no heap): that is the 0-delay fast path.

Control protocol (unix stream socket, one JSON line in, one JSON line out):
  {"cmd": "ping"} | {"cmd": "stats"} |
  {"cmd": "set", "direction": "a_to_b"|"b_to_a", "impairment": {...}}
"""
from __future__ import annotations

import argparse
import errno
import heapq
import json
import math
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from testbed.impair.spec import Impairment
from testbed.netdev import RELAY_OFFLOADS

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
VNET_HDR = struct.Struct("=BBHHHH")  # virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_*
VNET_LEN = VNET_HDR.size
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33

MSG_DONTWAIT = socket.MSG_DONTWAIT
BATCH = 128  # frames read per socket per loop turn
IDLE_CHECK_S = 0.5  # how often an idle relay checks that its interfaces still exist
SOCKET_BUF = 4 * 1024 * 1024
RECV_BUF = 65536 + 64  # big enough to detect (and refuse) GSO super-frames
# Offloads that make the kernel hand us frames larger than the MTU or with
# unfinished checksums; with any of them on, ping works but TCP stalls.

DIRECTIONS = ("a_to_b", "b_to_a")


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} relay[{os.getpid()}] {msg}", file=sys.stderr, flush=True)


# Standardised jitter samples (mean ~0, stdev 1, except uniform: half-width 1).
_PARETO_A = 3.0
_PARETO_MEAN = _PARETO_A / (_PARETO_A - 1.0)
_PARETO_SD = math.sqrt(_PARETO_A / ((_PARETO_A - 1.0) ** 2 * (_PARETO_A - 2.0)))
_PN_SD = math.sqrt(0.25**2 + 0.75**2)


def _pareto(rnd: Callable[[], float]) -> float:
    return ((1.0 - rnd()) ** (-1.0 / _PARETO_A) - _PARETO_MEAN) / _PARETO_SD


def jitter_sampler(dist: str) -> Callable[[], float]:
    """A function returning one standardised jitter sample for `dist`.

    'normal', 'pareto' and 'paretonormal' have stdev 1 (so jitter_ms is the
    standard deviation, as with netem's tables); 'uniform' spans [-1, 1) like
    netem without a distribution table.
    """
    rnd, gauss = random.random, random.gauss
    if dist == "uniform":
        return lambda: 2.0 * rnd() - 1.0
    if dist == "normal":
        return lambda: gauss(0.0, 1.0)
    if dist == "pareto":
        return lambda: _pareto(rnd)
    if dist == "paretonormal":
        return lambda: (0.25 * gauss(0.0, 1.0) + 0.75 * _pareto(rnd)) / _PN_SD
    raise ValueError(f"unknown jitter distribution {dist!r}")


def wire_len(frame: bytes) -> int:
    """Bytes the frame occupies on the wire; a GSO frame counts every segment's headers."""
    _, gso_type, hdr_len, gso_size, _, _ = VNET_HDR.unpack_from(frame)
    n = len(frame) - VNET_LEN
    if gso_type and gso_size and n > hdr_len:
        segs = -(-(n - hdr_len) // gso_size)
        return n + (segs - 1) * hdr_len
    return n


class Direction:
    """Impairment state and counters of one direction (frames read on `src`)."""

    def __init__(self, name: str, index: int, out: socket.socket, imp: Impairment) -> None:
        self.name = name
        self.index = index
        self.out = out
        self.queued = 0
        self.last_departure = 0.0
        self.gilbert_bad = False
        self.fifo: deque[tuple[float, bytes]] = deque()
        self.reorder_counter = 0
        self.counters = dict.fromkeys(
            ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "dropped_loss", "dropped_down",
             "dropped_queue", "dropped_oversize", "tx_errors", "duplicated", "reordered", "gso_frames"), 0)
        self.set(imp)

    def set(self, imp: Impairment) -> None:
        self.imp = imp
        self.fast = imp.is_noop()
        self.delay_s = imp.delay_ms / 1000.0
        self.jitter_s = imp.jitter_ms / 1000.0
        self.sample = jitter_sampler(imp.jitter_dist)
        self.loss = imp.loss_pct / 100.0
        self.gilbert = imp.loss_model == "gilbert" and imp.loss_pct > 0
        self.gp, self.gr = imp.gilbert_p_r()
        self.dup = imp.duplicate_pct / 100.0
        self.reorder = imp.reorder_pct / 100.0 if imp.delay_ms > 0 else 0.0
        self.s_per_byte = 8.0 / imp.rate_bps if imp.rate_bps else 0.0

    def lost(self) -> bool:
        """One loss decision; the Gilbert variant moves the state first, as netem does."""
        rnd = random.random
        if not self.gilbert:
            return rnd() < self.loss
        if self.gilbert_bad:
            if rnd() < self.gr:
                self.gilbert_bad = False
        elif rnd() < self.gp:
            self.gilbert_bad = True
        return self.gilbert_bad


class Relay:
    """The forwarding loop; see the module docstring."""

    def __init__(self, if_a: str, if_b: str, a_to_b: Impairment, b_to_a: Impairment,
                 control_path: Path) -> None:
        self.ifnames = (if_a, if_b)
        self.ifindex = tuple(socket.if_nametoindex(n) for n in self.ifnames)
        for name in self.ifnames:
            prepare_interface(name)
        self.socks = tuple(open_packet_socket(n) for n in self.ifnames)
        # direction i reads socks[i] and writes the other one
        self.dirs = (
            Direction("a_to_b", 0, self.socks[1], a_to_b),
            Direction("b_to_a", 1, self.socks[0], b_to_a),
        )
        self.heap: list[tuple[float, int, int, bytes]] = []
        self.seq = 0
        self.running = True
        self.exit_code = 0
        self.control_path = control_path
        self.control = open_control_socket(control_path)
        self.clients: dict[socket.socket, bytes] = {}
        self.buf = bytearray(RECV_BUF)
        self.view = memoryview(self.buf)
        self.oversize_logged = False
        self.gso_logged = False

    # ---- frames -------------------------------------------------------------

    def _send(self, d: Direction, frame: bytes | memoryview) -> None:
        try:
            d.out.send(frame)
        except OSError as exc:
            self._send_error(d, exc, len(frame))
            return
        d.counters["tx_packets"] += 1
        d.counters["tx_bytes"] += len(frame) - VNET_LEN

    def _send_error(self, d: Direction, exc: OSError, size: int) -> None:
        d.counters["tx_errors"] += 1
        if exc.errno == errno.EMSGSIZE and not self.oversize_logged:
            self.oversize_logged = True
            log(f"frame of {size} bytes exceeds the MTU: disable offloads "
                f"(tso/gso/tx) on the far ends of {'/'.join(self.ifnames)}")
        elif exc.errno in (errno.ENXIO, errno.ENODEV, errno.ENETDOWN):
            self._check_interfaces()

    def _enqueue(self, d: Direction, frame: bytes, now: float) -> None:
        """Schedule one copy of a frame; netem's order: reorder, delay+jitter, rate, limit."""
        c = d.counters
        if d.reorder:
            if d.reorder_counter >= d.imp.reorder_gap - 1 and random.random() < d.reorder:
                d.reorder_counter = 0
                c["reordered"] += 1
                self._send(d, frame)
                return
            d.reorder_counter += 1
        if d.queued >= d.imp.limit:
            c["dropped_queue"] += 1
            return
        t = now + d.delay_s
        d.queued += 1
        if d.jitter_s and not d.s_per_byte:
            # jitter without rate may reorder, as in netem: needs the heap
            t = max(now, t + d.jitter_s * d.sample())
            self.seq += 1
            heapq.heappush(self.heap, (t, self.seq, d.index, frame))
            return
        if d.jitter_s:
            t = max(now, t + d.jitter_s * d.sample())
        if d.s_per_byte:
            t = max(t, d.last_departure) + wire_len(frame) * d.s_per_byte
            d.last_departure = t
        # FIFO case: departures never go backwards (a live delay decrease waits for
        # the frames already queued instead of overtaking them)
        fifo = d.fifo
        if fifo and fifo[-1][0] > t:
            t = fifo[-1][0]
        fifo.append((t, frame))

    def _read(self, i: int) -> None:
        """Drain up to BATCH frames from socket i and forward or schedule them."""
        d, monotonic = self.dirs[i], time.monotonic
        recv_into, buf, view = self.socks[i].recv_into, self.buf, self.view
        if d.fast:
            # the 0-impairment path: straight from the receive buffer, no copy
            send = d.out.send
            packets = nbytes = sent = sent_bytes = 0
            for _ in range(BATCH):
                try:
                    n = recv_into(buf, RECV_BUF, MSG_DONTWAIT)
                except BlockingIOError:
                    break
                except OSError as exc:
                    self._recv_error(exc)
                    break
                packets += 1
                nbytes += n
                try:
                    send(view[:n])
                    sent += 1
                    sent_bytes += n
                except OSError as exc:
                    self._send_error(d, exc, n)
            c = d.counters
            c["rx_packets"] += packets
            c["rx_bytes"] += nbytes - packets * VNET_LEN
            c["tx_packets"] += sent
            c["tx_bytes"] += sent_bytes - sent * VNET_LEN
            return
        c = d.counters
        for _ in range(BATCH):
            try:
                n = recv_into(buf, RECV_BUF, MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                self._recv_error(exc)
                return
            c["rx_packets"] += 1
            c["rx_bytes"] += n - VNET_LEN
            if n >= RECV_BUF:
                c["dropped_oversize"] += 1
                continue
            if buf[1]:  # gso_type: a TSO/GSO super-frame from an offloading sender
                c["gso_frames"] += 1
                if not self.gso_logged:
                    self.gso_logged = True
                    log("received GSO frames: impairment applies per super-frame; turn tso/gso "
                        f"off on the far ends of {'/'.join(self.ifnames)} for per-packet accuracy")
            if not d.imp.up:
                c["dropped_down"] += 1
                continue
            if d.loss and d.lost():
                c["dropped_loss"] += 1
                continue
            frame = bytes(view[:n])
            now = monotonic()  # per frame: the relay may have been descheduled mid-batch
            self._enqueue(d, frame, now)
            if d.dup and random.random() < d.dup:
                c["duplicated"] += 1
                self._enqueue(d, frame, now)

    def _recv_error(self, exc: OSError) -> None:
        if exc.errno in (errno.ENETDOWN, errno.ENXIO, errno.ENODEV):
            self._check_interfaces()
            return
        raise exc

    def _depart(self, now: float) -> float | None:
        """Send every frame that is due; return the next departure time, if any."""
        nxt: float | None = None
        for d in self.dirs:
            fifo = d.fifo
            if not fifo:
                continue
            if fifo[0][0] <= now:
                send, popleft = d.out.send, fifo.popleft
                sent = sent_bytes = 0
                while fifo and fifo[0][0] <= now:
                    frame = popleft()[1]
                    try:
                        send(frame)
                        sent += 1
                        sent_bytes += len(frame)
                    except OSError as exc:
                        self._send_error(d, exc, len(frame))
                d.queued -= sent
                d.counters["tx_packets"] += sent
                d.counters["tx_bytes"] += sent_bytes - sent * VNET_LEN
            if fifo and (nxt is None or fifo[0][0] < nxt):
                nxt = fifo[0][0]
        heap, dirs = self.heap, self.dirs
        while heap and heap[0][0] <= now:
            _, _, i, frame = heapq.heappop(heap)
            d = dirs[i]
            d.queued -= 1
            self._send(d, frame)
        if heap and (nxt is None or heap[0][0] < nxt):
            nxt = heap[0][0]
        return nxt

    def _flush(self, d: Direction) -> None:
        """Drop everything queued in one direction (the link went down)."""
        kept = [e for e in self.heap if e[2] != d.index]
        heapq.heapify(kept)
        self.heap = kept
        d.fifo.clear()
        d.counters["dropped_down"] += d.queued
        d.queued = 0

    # ---- control ------------------------------------------------------------

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        if cmd == "ping":
            return {"ok": True, "pid": os.getpid()}
        if cmd == "stats":
            return {"ok": True, "stats": self.stats()}
        if cmd == "set":
            direction = req.get("direction")
            if direction not in DIRECTIONS:
                return {"ok": False, "error": f"direction must be one of {DIRECTIONS}"}
            try:
                imp = Impairment.from_dict(req.get("impairment") or {})
            except (TypeError, ValueError) as exc:
                return {"ok": False, "error": str(exc)}
            d = self.dirs[DIRECTIONS.index(direction)]
            d.set(imp)
            if not imp.up:
                self._flush(d)
            log(f"{direction} set to {imp.describe()}")
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    def stats(self) -> dict[str, Any]:
        return {
            d.name: {**d.counters, "queued": d.queued, "impairment": d.imp.to_dict()}
            for d in self.dirs
        }

    def _accept(self) -> None:
        try:
            conn, _ = self.control.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.clients[conn] = b""

    def _client(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        buf = self.clients[conn] + data
        if data and b"\n" not in buf and len(buf) < 1 << 20:
            self.clients[conn] = buf
            return
        del self.clients[conn]
        try:
            if b"\n" in buf:
                try:
                    reply = self.handle(json.loads(buf.split(b"\n", 1)[0]))
                except (ValueError, AttributeError) as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                conn.settimeout(1.0)
                conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        finally:
            conn.close()

    # ---- lifecycle ----------------------------------------------------------

    def _check_interfaces(self) -> None:
        for name, index in zip(self.ifnames, self.ifindex):
            try:
                alive = socket.if_nametoindex(name) == index
            except OSError:
                alive = False
            if not alive:
                log(f"interface {name} disappeared; exiting")
                self.running = False
                self.exit_code = 3

    def run(self) -> int:
        log(f"forwarding {self.ifnames[0]} <-> {self.ifnames[1]}; "
            f"a_to_b: {self.dirs[0].imp.describe()}; b_to_a: {self.dirs[1].imp.describe()}")
        sa, sb = self.socks
        next_check = time.monotonic() + IDLE_CHECK_S
        while self.running:
            now = time.monotonic()
            nxt = self._depart(now)
            if now >= next_check:
                self._check_interfaces()
                next_check = now + IDLE_CHECK_S
            timeout = (next_check if nxt is None else min(next_check, nxt)) - now
            rlist = [sa, sb, self.control, *self.clients]
            try:
                ready, _, _ = select.select(rlist, [], [], max(timeout, 0.0))
            except InterruptedError:
                continue
            if not ready:
                continue
            for s in ready:
                if s is sa:
                    self._read(0)
                elif s is sb:
                    self._read(1)
                elif s is self.control:
                    self._accept()
                else:
                    self._client(s)
        self.close()
        return self.exit_code

    def close(self) -> None:
        log(f"stopping; stats {json.dumps(self.stats())}")
        for s in (*self.socks, self.control, *self.clients):
            s.close()
        try:
            self.control_path.unlink()
        except FileNotFoundError:
            pass


def prepare_interface(name: str) -> None:
    """Offloads off, IPv6 off (so the host stays silent on it), link up."""
    for feature in RELAY_OFFLOADS:
        # one call per feature: ethtool refuses the whole list if one is fixed
        subprocess.run(["ethtool", "-K", name, feature, "off"], capture_output=True, check=False)
    try:
        Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1\n")
    except OSError:
        pass
    subprocess.run(["ip", "link", "set", "dev", name, "up"], check=True, capture_output=True)


def open_packet_socket(name: str) -> socket.socket:
    """A packet socket that only ever sees frames of interface `name`."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # proto 0: receives nothing yet
    for opt, fallback in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUF)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, fallback, SOCKET_BUF)
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((name, ETH_P_ALL))
    # promiscuous for as long as the socket lives (the kernel undoes it on close)
    mreq = struct.pack("iHH8s", socket.if_nametoindex(name), PACKET_MR_PROMISC, 0, b"")
    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    return s


def open_control_socket(path: Path) -> socket.socket:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # root-only: the socket can change link behaviour
    try:
        s.bind(str(path))
    finally:
        os.umask(old)
    s.listen(8)
    s.setblocking(False)
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.impair.relay", description=__doc__.split("\n")[0])
    ap.add_argument("--if-a", required=True)
    ap.add_argument("--if-b", required=True)
    ap.add_argument("--a-to-b", default="{}", help="Impairment as JSON")
    ap.add_argument("--b-to-a", default="{}", help="Impairment as JSON")
    ap.add_argument("--control", required=True, type=Path, help="unix socket path")
    args = ap.parse_args(argv)
    relay = Relay(args.if_a, args.if_b, Impairment.from_dict(json.loads(args.a_to_b)),
                  Impairment.from_dict(json.loads(args.b_to_a)), args.control)

    def stop(signum: int, _frame: object) -> None:
        relay.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return relay.run()


if __name__ == "__main__":
    sys.exit(main())
