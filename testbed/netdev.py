"""Settings every emulated interface gets, in one place (the builder and the relay share them).

Without userspace TSO the userspace datapath moves real frames only: with
offloads on, TCP through OVS netdev hangs while ping works (see PLATFORM.md).
So then offloads are off on every end.

With userspace TSO in force (testbed.platform.userspace_tso), OVS carries a TCP
sender's 64 KB segments across every switch as one frame, with their
virtio-net header, and the kernel cuts them into MTU packets only where an
interface without segmentation offload sends them on. Measured here across 5
switches: 6.0 Gbit/s against 0.5 with MTU frames. A link the testbed shapes
(jitter, loss, duplication, reordering, rate, MTU) still needs real packets:
they would act on 64 KB aggregates. So such links keep offloads off on both
ends (the kernel segments before them), and the rest keep them on, a link with
a constant delay included (its relay's ends too: relay_offloads; the delay acts
on a frame as on each of its packets), but for UDP segmentation: OVS 3.1 takes no UDP GSO frames, so
the kernel cuts the 5G relays' bursts before they leave the node. A run with
the 5G path keeps offloads off everywhere: this OVS (3.1) re-cuts a super-frame
to its output port's MTU, not to the sender's segment size, which a UPF cannot
forward into its narrower N6 TUN (testbed.engine.build.preflight).
"""
from __future__ import annotations

# Off on every emulated interface; veth can change all of these, so one ethtool call does.
OFFLOADS: tuple[str, ...] = ("tx", "rx", "tso", "gso", "gro")
# Also off on a relay's ends, one call each: ethtool refuses a whole list if one feature is fixed.
RELAY_OFFLOADS: tuple[str, ...] = (*OFFLOADS, "lro", "ufo", "rxvlan", "txvlan")


# With userspace TSO, on an unshaped link: on, and off (in one ethtool call).
TSO_ON: tuple[str, ...] = ("tx", "tso", "gso")
TSO_OFF: tuple[str, ...] = ("tx-udp-segmentation",)


def relay_offloads(segmenting: bool) -> list[tuple[str, str]]:
    """(feature, on|off) for a relay's end: all off, or, on a link that keeps 64 KB TCP frames, TCP
    segmentation kept (the relay hands a frame on whole, with its virtio-net header)."""
    keep = TSO_ON if segmenting else ()
    return [(f, "on" if f in keep else "off") for f in (*RELAY_OFFLOADS, *(TSO_OFF if segmenting else ()))]


def offloads_off_command(intf: str) -> str:
    """One shell command turning OFFLOADS off on `intf` (quietly: a missing feature is no error)."""
    return f"ethtool -K {intf} {' '.join(f'{f} off' for f in OFFLOADS)} >/dev/null 2>&1"


def offloads_command(intf: str, tso: bool) -> str:
    """The offloads of one end: TCP segmentation kept (`tso`: userspace TSO, unshaped link) or all off."""
    if not tso:
        return offloads_off_command(intf)
    features = [f"{f} on" for f in TSO_ON] + [f"{f} off" for f in TSO_OFF]
    return f"ethtool -K {intf} {' '.join(features)} >/dev/null 2>&1"
