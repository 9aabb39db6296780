"""Per-node set-up once links exist: offloads, MTU, the run's hosts file; and the switch-side ends.

One shell round trip per host (a Mininet `cmd` costs a pty exchange), one
shell for every switch port in the root namespace.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from testbed.errors import BuildError
from testbed.impair.base import shaped
from testbed.netdev import offloads_command

if TYPE_CHECKING:
    from testbed.engine.testbed import Testbed


def write_hosts_file(tb: "Testbed") -> Path:
    """/etc/hosts for every node: the topology's names, so `ping emr` works inside the network."""
    lines = ["127.0.0.1 localhost"] + [f"{ip.ip} {name}" for name, ip in tb.layout.ips.items()]
    path = tb.manifest.dir / "hosts"
    path.write_text("\n".join(lines) + "\n")
    return path


def _mtus(tb: "Testbed") -> dict[str, int]:
    out: dict[str, int] = {}
    for ln in tb.layout.links:
        if ln.params.mtu:
            out[ln.intf_a] = out[ln.intf_b] = ln.params.mtu
    return out


def segmenting_ends(tb: "Testbed") -> set[str]:
    """The link ends that keep TCP segmentation offload: every end of an unshaped link, when the daemon
    runs userspace TSO (testbed.netdev says why shaped links need real packets)."""
    if not tb.manifest.tso:
        return set()
    return {intf for ln in tb.layout.links if not shaped(ln) for intf in (ln.intf_a, ln.intf_b)}


def configure_hosts(tb: "Testbed", hosts_file: Path, segmenting: set[str]) -> None:
    """Per host, one shell round trip: offloads (`segmenting`: the ends that keep TCP segmentation),
    MTU, and what its runtime still needs."""
    mtus = _mtus(tb)
    names = tb.host_names()
    neigh = neighbour_table_command(len(names))
    for name in names:
        h = tb.mn_node(name)
        intf = h.defaultIntf().name
        script = [offloads_command(intf, intf in segmenting),
                  *tb.runtime_of(name).setup_commands(intf, hosts_file), *neigh]
        if intf in mtus:
            script.append(f"ip link set dev {intf} mtu {mtus[intf]}")
        h.cmd("; ".join(script))


NEIGH_DEFAULT_GC_THRESH2 = 512  # the kernel's: above it a namespace's ARP entries are evicted within 5 s


def neighbour_table_command(hosts: int) -> list[str]:
    """Room in each node's own ARP table for every host of a large alliance (per namespace, never the
    machine's): a server that a thousand terminals reach would otherwise evict and re-resolve them."""
    if 2 * hosts <= NEIGH_DEFAULT_GC_THRESH2:
        return []
    return [f"sysctl -qw net.ipv4.neigh.default.gc_thresh1={hosts} net.ipv4.neigh.default.gc_thresh2={2 * hosts} "
            f"net.ipv4.neigh.default.gc_thresh3={4 * hosts} 2>/dev/null || true"]


def configure_switch_ports(tb: "Testbed", segmenting: set[str]) -> None:
    """Switch-side veth ends: offloads as the userspace datapath needs them, and MTU, in one shell."""
    cmds = []
    for ln in tb.layout.links:
        for end, intf in ((ln.a, ln.intf_a), (ln.b, ln.intf_b)):
            if end in tb.layout.dpids:
                cmds.append(offloads_command(intf, intf in segmenting))
                if ln.params.mtu:
                    cmds.append(f"ip link set dev {intf} mtu {ln.params.mtu}")
    if cmds:
        r = subprocess.run(["sh", "-c", "; ".join(cmds) + "; true"], capture_output=True, text=True)
        if r.returncode != 0:
            raise BuildError(f"configuring switch ports failed: {r.stderr.strip()}")
