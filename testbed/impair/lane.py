"""What one direction of the relay does to each frame: loss, reordering, delay, jitter, rate, queue.

Pure decisions and queues, no sockets: the forwarder (forward.py) reads a frame,
asks its `Lane` whether to drop it and when it may leave, and sends it then.
Kept apart so the netem-like semantics (spec.py) live in one place that reads
like the spec, and so they can be exercised without root.
"""
from __future__ import annotations

import math
import random
import socket
import struct
from collections import deque
from typing import Any, Callable

from testbed.impair.spec import Impairment

VNET_HDR = struct.Struct("=BBHHHH")  # virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_*
VNET_LEN = VNET_HDR.size

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


class Lane:
    """Impairment state, queues and counters of one direction; frames leave through `out`.

    Delayed frames wait in `fifo`, in arrival order: a link delivers in order (a radio link's RLC/PDCP
    does), so a frame whose jitter sample came out shorter than its predecessor's leaves right after
    it, as netem's frames do when it also has a rate. Only `reorder` (reorder_pct) sends frames out of
    order; jitter alone reordering TCP segments (netem's behaviour without a rate) cut a 30 Mbit/s
    bulk transfer over the reference's radio links (4 ms +-1 ms) to half its rate.
    """

    def __init__(self, name: str, out: socket.socket, imp: Impairment) -> None:
        self.name = name
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

    def schedule(self, frame: bytes, now: float) -> bool:
        """Queue one copy of a frame; True means send it now (reordered ahead of the queue).

        netem's order: reorder, limit, delay+jitter, rate.
        """
        c = self.counters
        if self.reorder:
            if self.reorder_counter >= self.imp.reorder_gap - 1 and random.random() < self.reorder:
                self.reorder_counter = 0
                c["reordered"] += 1
                return True
            self.reorder_counter += 1
        if self.queued >= self.imp.limit:
            c["dropped_queue"] += 1
            return False
        t = now + self.delay_s
        self.queued += 1
        if self.jitter_s:
            t = max(now, t + self.jitter_s * self.sample())
        if self.s_per_byte:
            t = max(t, self.last_departure) + wire_len(frame) * self.s_per_byte
            self.last_departure = t
        # departures never go backwards: a shorter jitter sample, or a live delay decrease, waits for
        # the frames already queued instead of overtaking them
        fifo = self.fifo
        if fifo and fifo[-1][0] > t:
            t = fifo[-1][0]
        fifo.append((t, frame))
        return False

    def next_departure(self) -> float | None:
        return self.fifo[0][0] if self.fifo else None

    def flush(self) -> None:
        """Drop everything queued (the link went down)."""
        self.fifo.clear()
        self.counters["dropped_down"] += self.queued
        self.queued = 0

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "queued": self.queued, "impairment": self.imp.to_dict()}
