"""The relay's forwarding half: frames between two interfaces, impaired per direction.

relay.py runs a `Forwarder` in its own process and adds the control socket;
this module holds only what touches frames, so the hot loop reads on its own.

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
- Delayed frames wait in a FIFO per direction: departures keep arrival order
  (jitter included: a link delivers in order; only `reorder` sends frames
  ahead, see lane.py); the loop sleeps in select() exactly until the next departure
  (microsecond timeout, unlike epoll's milliseconds) or until a frame arrives,
  so it never busy-spins.
- Reads are non-blocking and drained in bounded batches so a flood in one
  direction cannot starve departures or the other direction.
- A delayed frame's departure counts from when the kernel took it in (the
  socket's SO_TIMESTAMPNS, stamped as the sender's veth handed it over), not
  from when this loop got round to reading it: a relay that was descheduled, or
  busy with the rest of a batch, would otherwise add its own lateness to the
  link's delay (measured: +0.98 ms p99 at 10k packets/s on a busy 2-core VM).
  For the same reason the process asks for 1 us of timer slack (the default
  50 us lets the kernel fire its select() timeout late to batch wake-ups).
- Every frame carries a virtio_net_hdr (PACKET_VNET_HDR): if the sender in a
  namespace still has checksum offload or TSO on, we receive "checksum not yet
  computed" or 64 KB GSO frames; passing the header back on send lets the
  kernel finish the checksum / segment on our (offload-off) egress instead of
  delivering a corrupt frame. That is why TCP no longer hangs when someone
  forgets ethtool on the far end. Per-packet loss/rate accuracy still wants
  tso/gso off on the far ends: a GSO frame is impaired as one unit. A link
  whose impairment is a constant delay at most keeps them on (`segmenting`:
  the relay's own ends keep TCP segmentation so frames leave it whole): 10 ms
  then costs a 3-switch path what the window allows, not 0.6 Gbit/s.
- Handing a link with nothing set to the kernel instead (tc mirred between
  the two ends) was measured and is not done: 4.6-5.2 Gbit/s against the
  relay's 9-10, since the kernel then does the relay's work inside the
  switch daemon's own sends, on the one core it already fills.
- Frames of an unimpaired direction are sent straight from the receive buffer
  (no copy, no queue): that is the 0-delay fast path. It moves them in batches,
  one recvmmsg and one sendmmsg per batch (mmsg.py), where libc has them.
"""
from __future__ import annotations

import ctypes
import errno
import os
import random
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from testbed.impair import mmsg
from testbed.impair.lane import VNET_LEN, Lane
from testbed.impair.spec import Impairment
from testbed.netdev import relay_offloads
from traffic import rxstamp

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
PR_SET_TIMERSLACK = 29
TIMER_SLACK_NS = 1000

MSG_DONTWAIT = socket.MSG_DONTWAIT
BATCH = 128  # frames read per socket per loop turn
SOCKET_BUF = 4 * 1024 * 1024
# A link that keeps 64 KB TCP frames: 4 MiB held a few dozen, and its socket dropped thousands a run while the
# loop was busy with a departure burst (ss -0 -m, 10 ms each way at ~7 Gbit/s); 16 MiB dropped none
FRAMES_SOCKET_BUF = 16 * 1024 * 1024
RECV_BUF = 65536 + 64  # big enough to detect (and refuse) GSO super-frames
COPY_MAX = 2048  # a delayed frame up to this size is copied out of the receive buffer; a bigger one keeps it
SPARE_MAX = 256  # receive buffers kept for reuse (16 MiB): more than a 10 ms link holds at ~10 Gbit/s
_GONE = (errno.ENETDOWN, errno.ENXIO, errno.ENODEV)  # the interface went away (or down)

DIRECTIONS = ("a_to_b", "b_to_a")


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} relay[{os.getpid()}] {msg}", file=sys.stderr, flush=True)


class Forwarder:
    """Moves frames between two interfaces; direction i reads socks[i] and writes the other."""

    def __init__(self, if_a: str, if_b: str, a_to_b: Impairment, b_to_a: Impairment,
                 segmenting: bool = False) -> None:
        self.ifnames = (if_a, if_b)
        self.ifindex = tuple(socket.if_nametoindex(n) for n in self.ifnames)
        for name in self.ifnames:
            prepare_interface(name, segmenting)
        room = FRAMES_SOCKET_BUF if segmenting else SOCKET_BUF
        self.socks = tuple(open_packet_socket(n, room) for n in self.ifnames)
        self.lanes = (Lane("a_to_b", self.socks[1], a_to_b), Lane("b_to_a", self.socks[0], b_to_a))
        self.running = True
        self.exit_code = 0
        self.buf = bytearray(RECV_BUF)
        self.view = memoryview(self.buf)
        self.rbufs = [self.view[:RECV_BUF]]
        self.batch = mmsg.Batch(RECV_BUF) if mmsg.available() else None
        self.oversize_logged = False
        self.gso_logged = False
        self.spare: list[bytearray] = []  # receive buffers given back by big frames that departed

    def describe(self) -> str:
        a, b = self.lanes
        return (f"{self.ifnames[0]} <-> {self.ifnames[1]}; a_to_b: {a.imp.describe()}; "
                f"b_to_a: {b.imp.describe()}")

    def set(self, direction: str, imp: Impairment) -> None:
        """Change one direction live; a link going down drops what it holds."""
        lane = self.lanes[DIRECTIONS.index(direction)]
        lane.set(imp)
        if not imp.up:
            lane.flush()
        log(f"{direction} set to {imp.describe()}")

    def stats(self) -> dict[str, dict]:
        return {lane.name: lane.stats() for lane in self.lanes}

    # ---- frames -------------------------------------------------------------

    def _send(self, lane: Lane, frame: bytes | memoryview) -> None:
        try:
            lane.out.send(frame)
        except OSError as exc:
            self._send_error(lane, exc, len(frame))
            return
        lane.counters["tx_packets"] += 1
        lane.counters["tx_bytes"] += len(frame) - VNET_LEN

    def _send_error(self, lane: Lane, exc: OSError, size: int) -> None:
        lane.counters["tx_errors"] += 1
        if exc.errno == errno.EMSGSIZE and not self.oversize_logged:
            self.oversize_logged = True
            log(f"frame of {size} bytes exceeds the MTU: disable offloads "
                f"(tso/gso/tx) on the far ends of {'/'.join(self.ifnames)}")
        elif exc.errno in _GONE:
            self.check_interfaces()

    def read(self, i: int) -> None:
        """Drain up to BATCH frames from socket i and forward or schedule them."""
        lane = self.lanes[i]
        if lane.fast:
            self._read_fast(i, lane)
            return
        recvmsg_into = self.socks[i].recvmsg_into
        monotonic = time.monotonic
        offset = time.time() - monotonic()  # realtime -> monotonic, for the kernel's arrival stamps
        c = lane.counters
        for _ in range(BATCH):
            try:
                n, anc, _flags, _addr = recvmsg_into(self.rbufs, rxstamp.ANC_SPACE, MSG_DONTWAIT)
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
            if self.buf[1]:  # gso_type: a TSO/GSO super-frame from an offloading sender
                c["gso_frames"] += 1
                if not self.gso_logged and not lane.imp.frame_safe():
                    self.gso_logged = True
                    log("received GSO frames: impairment applies per super-frame; turn tso/gso "
                        f"off on the far ends of {'/'.join(self.ifnames)} for per-packet accuracy")
            if not lane.imp.up:
                c["dropped_down"] += 1
                continue
            if lane.loss and lane.lost():
                c["dropped_loss"] += 1
                continue
            whole = n > COPY_MAX  # a big frame waits in the buffer it was read into (no copy)
            frame: bytes | memoryview = self.view[:n] if whole else bytes(self.view[:n])
            now = arrival(anc, offset, monotonic())
            held = lane.queued
            if lane.schedule(frame, now):
                self._send(lane, frame)
            elif whole and lane.queued > held:
                self._next_buffer()  # that one is the queue's now
            if lane.dup and random.random() < lane.dup:
                c["duplicated"] += 1
                copy = bytes(frame) if whole else frame  # its own buffer: the original's may go back
                if lane.schedule(copy, now):
                    self._send(lane, copy)

    def _next_buffer(self) -> None:
        """Read into a spare buffer (one a departed frame gave back) or a new one."""
        self.buf = self.spare.pop() if self.spare else bytearray(RECV_BUF)
        self.view = memoryview(self.buf)
        self.rbufs = [self.view]

    def _give_back(self, frame: bytes | memoryview) -> None:
        """A frame that waited in its receive buffer has left: the buffer is spare again."""
        if type(frame) is memoryview and len(self.spare) < SPARE_MAX:
            self.spare.append(frame.obj)

    def _read_fast(self, i: int, lane: Lane) -> None:
        """The 0-impairment path: straight from the receive buffer, no copy."""
        if self.batch is not None:
            self._read_batched(i, lane, self.batch)
            return
        recv_into, send, buf, view = self.socks[i].recv_into, lane.out.send, self.buf, self.view
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
                self._send_error(lane, exc, n)
        c = lane.counters
        c["rx_packets"] += packets
        c["rx_bytes"] += nbytes - packets * VNET_LEN
        c["tx_packets"] += sent
        c["tx_bytes"] += sent_bytes - sent * VNET_LEN

    def _read_batched(self, i: int, lane: Lane, batch: mmsg.Batch) -> None:
        """The 0-impairment path a batch at a time: BATCH frames at most per turn, as the per-frame loop."""
        fd_in, fd_out, c = self.socks[i].fileno(), lane.out.fileno(), lane.counters
        for _ in range(max(1, BATCH // batch.count)):
            try:
                n = batch.recv(fd_in)
            except OSError as exc:
                self._recv_error(exc)
                return
            if not n:
                return
            lengths = batch.lengths(n)
            c["rx_packets"] += n
            c["rx_bytes"] += sum(lengths) - n * VNET_LEN
            sent, octets, errors = batch.send(fd_out, lengths)
            c["tx_packets"] += sent
            c["tx_bytes"] += octets - sent * VNET_LEN
            for exc in errors:
                self._send_error(lane, exc, max(lengths))
            if n < batch.count:
                return

    def _recv_error(self, exc: OSError) -> None:
        if exc.errno in _GONE:
            self.check_interfaces()
            return
        raise exc

    def depart(self, now: float) -> float | None:
        """Send every frame that is due; return the next departure time, if any."""
        nxt: float | None = None
        for lane in self.lanes:
            fifo = lane.fifo
            if fifo and fifo[0][0] <= now:
                send, popleft, give_back = lane.out.send, fifo.popleft, self._give_back
                sent = sent_bytes = left = 0
                while fifo and fifo[0][0] <= now:
                    frame = popleft()[1]
                    left += 1
                    try:
                        send(frame)
                        sent += 1
                        sent_bytes += len(frame)
                    except OSError as exc:
                        self._send_error(lane, exc, len(frame))
                    give_back(frame)
                lane.queued -= left  # a frame the kernel refused has left the queue too
                lane.counters["tx_packets"] += sent
                lane.counters["tx_bytes"] += sent_bytes - sent * VNET_LEN
            t = lane.next_departure()
            if t is not None and (nxt is None or t < nxt):
                nxt = t
        return nxt

    # ---- lifecycle ----------------------------------------------------------

    def check_interfaces(self) -> None:
        """Stop (exit code 3) once either interface is gone: the link was torn down."""
        for name, index in zip(self.ifnames, self.ifindex):
            try:
                alive = socket.if_nametoindex(name) == index
            except OSError:
                alive = False
            if not alive:
                log(f"interface {name} disappeared; exiting")
                self.running = False
                self.exit_code = 3

    def close(self) -> None:
        for s in self.socks:
            s.close()


def arrival(anc: list, offset: float, now: float) -> float:
    """When the kernel took the frame in, on CLOCK_MONOTONIC (`offset`: realtime minus monotonic); `now` when
    the frame carries no stamp, and never later than `now`."""
    stamp = rxstamp.stamp_ns(anc)
    if stamp is None:
        return now
    t = stamp * 1e-9 - offset
    return t if t < now else now


def tighten_timer_slack(ns: int = TIMER_SLACK_NS) -> bool:
    """Ask the kernel to fire this process's timers within `ns` of their time (prctl PR_SET_TIMERSLACK)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def prepare_interface(name: str, segmenting: bool = False) -> None:
    """Offloads off (`segmenting`: but TCP segmentation, see netdev.relay_offloads), IPv6 off (so the host
    stays silent on it), link up."""
    for feature, state in relay_offloads(segmenting):
        # one call per feature: ethtool refuses the whole list if one is fixed
        subprocess.run(["ethtool", "-K", name, feature, state], capture_output=True, check=False)
    try:
        Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1\n")
    except OSError:
        pass
    subprocess.run(["ip", "link", "set", "dev", name, "up"], check=True, capture_output=True)


def open_packet_socket(name: str, room: int = SOCKET_BUF) -> socket.socket:
    """A packet socket that only ever sees frames of interface `name`."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # proto 0: receives nothing yet
    for opt, fallback in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, room)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, fallback, room)
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    rxstamp.enable(s)
    s.bind((name, ETH_P_ALL))
    # promiscuous for as long as the socket lives (the kernel undoes it on close)
    mreq = struct.pack("iHH8s", socket.if_nametoindex(name), PACKET_MR_PROMISC, 0, b"")
    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    return s

