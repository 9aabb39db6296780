"""Per-node set-up once links exist: offloads, MTU, the run's hosts file; and the switch-side ends.

One shell round trip per host (a Mininet `cmd` costs a pty exchange), one
shell for every switch port in the root namespace.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.engine.links import link_key
from testbed.errors import BuildError
from testbed.impair.base import shaped
from testbed.netdev import offloads_command
from testbed.platform import raise_neighbour_limits
from testbed.ran.network import run_policy

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


CONFIGURE_WINDOW = 64  # host shells configuring at once


def configure_hosts(tb: "Testbed", hosts_file: Path, segmenting: set[str]) -> None:
    """Per host, one shell round trip, CONFIGURE_WINDOW hosts at a time: its address and MAC (which TbHost
    leaves to here), offloads (`segmenting`: the ends that keep TCP segmentation), MTU, what its runtime
    still needs, and then its interfaces up."""
    mtus = _mtus(tb)
    names = tb.host_names()
    for start in range(0, len(names), CONFIGURE_WINDOW):
        shells = []
        for name in names[start:start + CONFIGURE_WINDOW]:
            h = tb.mn_node(name)
            h.sendCmd("; ".join(host_script(h, tb.runtime_of(name).setup_commands, hosts_file, segmenting, mtus)))
            shells.append(h)
        for h in shells:
            h.waitOutput()


def host_script(h: Any, setup_commands: Any, hosts_file: Path, segmenting: set[str],
                mtus: dict[str, int]) -> list[str]:
    """The shell commands that configure one host (a Mininet node whose interfaces exist, still down)."""
    script = ["ip link set dev lo up"]
    d = h.defaultIntf()
    if d is not None:
        if d.mac:
            script.append(f"ip link set dev {d.name} address {d.mac}")
        if d.ip:
            script.append(f"ip addr replace {d.ip}/{d.prefixLen or 8} dev {d.name}")
        script += [offloads_command(d.name, d.name in segmenting), *setup_commands(d.name, hosts_file)]
        if d.name in mtus:
            script.append(f"ip link set dev {d.name} mtu {mtus[d.name]}")
    return script + [f"ip link set dev {i.name} up" for i in h.intfList() if i.name != "lo"]


NEIGH_SLACK = 256  # ARP entries beyond the plan's pairs: probes, drills, the odd gateway


def neighbour_entries(tb: "Testbed") -> int:
    """About how many ARP entries the alliance's hosts hold at once: both ends of every granted pair and
    every pair that resolves each other for the 5G path, a gateway's worth per host, and slack for probes."""
    policy = run_policy(tb.topo, tb.ran)
    return 2 * (len(policy.pairs()) + len(policy.neighbours)) + 2 * len(tb.host_names()) + NEIGH_SLACK


def neighbour_room(tb: "Testbed") -> None:
    """Room in the machine's one ARP table for this alliance (testbed.platform.raise_neighbour_limits): a
    server that a thousand terminals reach would otherwise see them evicted, or refused, mid-check."""
    said = raise_neighbour_limits(neighbour_entries(tb))
    if said is None:
        return
    level, message = said
    if level == "warning":
        tb.warnings.append(message)
        tb.emit.warning(message)
    else:
        tb.emit.info(message)


def configure_switch_ports(tb: "Testbed", segmenting: set[str]) -> None:
    """Switch-side veth ends: offloads as the userspace datapath needs them, and MTU, in one shell."""
    cmds = []
    for ln in tb.layout.links:
        if link_key(ln.a, ln.b) in tb.manifest.patches:
            continue  # patch ports: no kernel interface
        for end, intf in ((ln.a, ln.intf_a), (ln.b, ln.intf_b)):
            if end in tb.layout.dpids:
                cmds.append(offloads_command(intf, intf in segmenting))
                if ln.params.mtu:
                    cmds.append(f"ip link set dev {intf} mtu {ln.params.mtu}")
    if cmds:
        r = subprocess.run(["sh", "-c", "; ".join(cmds) + "; true"], capture_output=True, text=True)
        if r.returncode != 0:
            raise BuildError(f"configuring switch ports failed: {r.stderr.strip()}")
