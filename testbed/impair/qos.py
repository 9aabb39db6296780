"""Priority queues on rate-limited links: the DSCP the slices mark picks an HTB class (pure tc commands).

The slicing rules mark each admitted IP packet with its slice's DSCP (from the
5QI: testbed.slicing.flows.FIVEQI_DSCP). Where a link has a rate, the switch's
end of it shapes to that rate with one HTB class per traffic class, served in
priority order EF > AF4x > AF3x > AF2x > AF1x > BE. Each class may borrow the
whole link rate when the classes above it are idle; each has a small floor
rate (1% of the link) so no class starves outright, and a bounded FIFO.
`qos: false` on a link (or in `defaults.link`, a site's `link`/`uplink`) keeps
the plain rate limit instead: one class, one FIFO, as Mininet's TCIntf does.

Why tc filters on the TOS byte and not OVS QoS. Measured here (OVS 3.1,
userspace `netdev` datapath, a 50 Mbit/s port, an 8-stream iperf3 TCP load,
EF-marked pings across it): `ovs-vsctl set port P qos=@q -- --id=@q create qos
type=linux-htb ... queues:0=@q0 queues:1=@q1` does create the HTB classes on
the port (ovs-vswitchd drives tc itself, whatever the datapath), but
`set_queue:1` in a flow has no effect: the userspace datapath sends every frame
through one AF_PACKET socket, so no frame carries the queue as its skb
priority and all land in the default class. The flow with set_queue matched
the 30 EF pings; queue 1's class sent 0 packets; the pings took 18-23 ms with
10% loss, the same as with no QoS at all. (The kernel datapath would carry
set_queue, but this platform has no openvswitch module.) A u32 filter on the
DSCP classifies the marking itself, on either datapath; with the classes below
the same pings took 0.05-0.14 ms with no loss while the bulk kept 48.9 Mbit/s.

Why the queues are bounded, and by so little. That one AF_PACKET socket is
shared by every port of ovs-vswitchd, and frames waiting in any qdisc count
against its send buffer (the host's net.core.wmem_default, 208 KiB here:
about 87 full-size frames). Once it is full every send fails (ENOBUFS) and OVS
drops the frame, whatever its class. With an unbounded bulk class the same EF
pings were lost (6.7%) before reaching their own class; with every class held
to at most 32 frames, none was. A short queue is also what a switch port has.

Host ends of a link keep the plain rate limit: nothing is marked before the
edge switch admits it. Where the kernel backend (netem) impairs a link, netem
replaces the root qdisc and shapes that link's rate itself, without these
queues; links with a rate and no impairment get them with either backend.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

HANDLE = 5  # the root qdisc's major number (as Mininet's TCIntf)
PARENT = 1  # 5:1, the class that holds the link rate; the traffic classes are its children
ETH_HEADER = 14
QUEUE_TARGET_MS = 20.0  # a class's FIFO holds about this much at the link rate ...
MIN_QUEUE = 8  # ... but at least this many frames (slow links) ...
MAX_QUEUE = 32  # ... and at most this many (the shared AF_PACKET send buffer, above)
FLOOR_SHARE = 0.01  # each class's guaranteed share of the link; the rest is borrowed in priority order
MIN_FLOOR_BPS = 8_000
PARENT_BURST = "15k"  # as Mininet's TCIntf


@dataclass(frozen=True)
class TrafficClass:
    name: str
    minor: int  # HTB class 5:<minor> and its FIFO's handle <minor>: (tc reads both as hex)
    precedences: tuple[int, ...]  # IP precedence (the DSCP's top three bits) it takes
    note: str


# Highest priority first. The DSCP's class selector (its top three bits) decides, so every AF drop
# precedence of a class (AF41/42/43) and the class selector CSn itself share a queue.
CLASSES: tuple[TrafficClass, ...] = (
    TrafficClass("EF", 0x10, (5, 6, 7), "EF 46 and CS5 40 (signalling), CS6/CS7 network control; ARP"),
    TrafficClass("AF4x", 0x20, (4,), "AF41-43, CS4: video, streaming"),
    TrafficClass("AF3x", 0x30, (3,), "AF31-33, CS3: real-time control, low-latency eMBB"),
    TrafficClass("AF2x", 0x40, (2,), "AF21-23, CS2: interactive (cloud desktops)"),
    TrafficClass("AF1x", 0x50, (1,), "AF11-13, CS1: buffered TCP, premium"),
    TrafficClass("BE", 0x60, (0,), "best effort: everything unmarked or unknown"),
)
DEFAULT = CLASSES[-1]


def traffic_class(dscp: int) -> TrafficClass:
    """The class a packet marked `dscp` (0..63) is queued in."""
    if not 0 <= dscp <= 63:
        raise ValueError(f"a DSCP is 0..63, got {dscp}")
    return next(c for c in CLASSES if dscp >> 3 in c.precedences)


def queue_limit(rate_bps: int, mtu: int = 1500) -> int:
    """Frames a class's FIFO holds: QUEUE_TARGET_MS at the link rate, within MIN_QUEUE..MAX_QUEUE."""
    frames = rate_bps * QUEUE_TARGET_MS / 1000 / ((mtu + ETH_HEADER) * 8)
    return max(MIN_QUEUE, min(MAX_QUEUE, math.ceil(frames)))


def floor_rate(rate_bps: int) -> int:
    return max(MIN_FLOOR_BPS, int(rate_bps * FLOOR_SHARE))


def _cls(minor: int) -> str:
    return f"{HANDLE}:{minor:x}"


def tc_batch(dev: str, rate_bps: int, mtu: int = 1500) -> list[str]:
    """The `tc -batch` lines that give `dev` the priority queues at `rate_bps` (replacing its root qdisc)."""
    if rate_bps <= 0:
        raise ValueError(f"a rate must be positive, got {rate_bps}")
    quantum = mtu + ETH_HEADER  # one frame per round: no class sends a burst ahead of its turn
    limit = queue_limit(rate_bps, mtu)
    rate = f"{rate_bps}bit"
    lines = [
        f"qdisc replace dev {dev} root handle {HANDLE}: htb default {DEFAULT.minor:x}",
        f"class add dev {dev} parent {HANDLE}: classid {_cls(PARENT)} htb rate {rate} ceil {rate} "
        f"burst {PARENT_BURST} cburst {PARENT_BURST} quantum {quantum}",
    ]
    for prio, c in enumerate(CLASSES):
        lines += [
            f"class add dev {dev} parent {_cls(PARENT)} classid {_cls(c.minor)} htb rate {floor_rate(rate_bps)}bit "
            f"ceil {rate} prio {prio} quantum {quantum}",
            f"qdisc add dev {dev} parent {_cls(c.minor)} handle {c.minor:x}: pfifo limit {limit}",
        ]
    for c in CLASSES:
        if c is DEFAULT:
            continue  # unmatched traffic goes to the default class anyway
        for prec in c.precedences:
            lines.append(f"filter add dev {dev} parent {HANDLE}: protocol ip prio 1 u32 "
                         f"match ip tos {prec << 5:#04x} 0xe0 flowid {_cls(c.minor)}")
    # ARP resolves the clinical flows too: it must not wait (or drop) behind a full bulk queue.
    lines.append(f"filter add dev {dev} parent {HANDLE}: protocol arp prio 2 u32 match u32 0 0 "
                 f"flowid {_cls(CLASSES[0].minor)}")
    return lines
