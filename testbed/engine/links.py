"""Links of a built network: creating them, starting their impairments, changing them live.

Every link is created the way the run's impairment backend wires it (HTB for a
rate, a relay pair or nothing extra where impaired); the backend then starts
each impairment point and returns the manifest record that lets any process
change the link later (`testbed link set` from another shell). This module only
orchestrates: it asks the backend object and never which backend it is. Faults
(link down/up) on links without an impairment point use the switch ports.
"""
from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from testbed.engine.procs import record
from testbed.errors import BuildError, UsageError
from testbed.impair import (DIRECTIONS, Impairment, ImpairError, Port, StartContext, apply_assignments, get_backend,
                            keeps_frames, needs_impairment)
from testbed.netdev import offloads_command
from testbed.openflow.layout import LinkLayout

if TYPE_CHECKING:
    from testbed.engine.rundir import Manifest
    from testbed.openflow.layout import Layout
    from testbed.engine.testbed import Testbed


LINKS_LISTED = 12  # in the error for a link that does not exist


def link_key(a: str, b: str) -> str:
    return f"{a}:{b}"


def find_link(links: dict, ref: str, what: str = "changeable link") -> tuple[str, Any]:
    """'A:B' or 'B:A' -> the link record; a clear error listing choices otherwise."""
    if ref in links:
        return ref, links[ref]
    a, _, b = ref.partition(":")
    if link_key(b, a) in links:
        return link_key(b, a), links[link_key(b, a)]
    if not links:
        raise UsageError(f"no {what} {ref!r}; {what}s: none (give a link delay/jitter/loss, even 0ms, to make it "
                         "changeable)")
    # the links of the nodes named first (the one meant is usually one of them), then the rest, up to a screenful
    near = [k for k in sorted(links) if {a, b} & set(k.split(":"))]
    shown = (near + [k for k in sorted(links) if k not in near])[:LINKS_LISTED]
    more = f", ... ({len(links)} in all: `testbed status` lists them)" if len(links) > len(shown) else ""
    raise UsageError(f"no {what} {ref!r}; {what}s{' of ' + ' or '.join(sorted({a, b} - {''})) + ' first' if near else ''}: "
                     f"{', '.join(shown)}{more}")


def set_carrier(m: "Manifest", ref: str, up: bool) -> str:
    """Cut or restore any link by its switch ports (links without an impairment point)."""
    key, ends = find_link(m.wires, ref, "link")
    if key in m.patches:
        if up:
            return key  # a patch link is never down
        unpatch(m, key)
    for intf in ends:
        r = subprocess.run(["ip", "link", "set", "dev", intf, "up" if up else "down"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise ImpairError(f"link {key}: {r.stderr.strip()}")
    return key


def as_veth(m: "Manifest", ref: str) -> tuple[str, list[str]]:
    """Make link `ref` of running run `m` a veth pair if it is a patch link (it keeps passing frames);
    returns its key and its root-namespace interfaces: what tcpdump watches."""
    key, _ = find_link(m.wires, ref, "link")
    unpatch(m, key)
    return key, list(m.wires[key])


def set_link(m: "Manifest", ref: str, items: list[str], direction: str = "both",
             layout: "Layout | None" = None) -> dict:
    """Apply `delay=20ms loss=1%` / `down` / `up` to a running link of manifest `m`; saves it.

    Any link can go down and up (fault injection) by its switch ports. Any link
    can be impaired too: one built without an impairment point gets one on
    first use (`splice`: the backend's own way, a relay spliced in at a switch
    port here), and keeps full speed until then. `layout`: the run's (read
    from its topology file when not given).
    """
    if items in (["down"], ["up"]) and direction == "both":
        try:
            find_link(m.links, ref)
        except UsageError:
            key = set_carrier(m, ref, items == ["up"])
            return {"link": key, "state": items[0]}
    try:
        key, rec = find_link(m.links, ref)
    except UsageError:
        key, rec = splice(m, ref, layout)
    both = direction == "both"
    if both and "up" in items:
        set_carrier(m, key, True)  # carrier first, then the impairment point lets frames through again
    dirs = list(DIRECTIONS) if direction == "both" else [direction]
    if any(d not in DIRECTIONS for d in dirs):
        raise UsageError(f"direction must be a_to_b, b_to_a or both, got {direction!r}")
    new = {}
    for d in dirs:
        try:
            new[d] = apply_assignments(Impairment.from_dict(rec[d]), items)
        except ValueError as exc:
            raise UsageError(f"link {key}: {exc}") from None
    apply_impairments(m, rec, new)
    m.save()
    if both and "down" in items:
        set_carrier(m, key, False)  # as a cut cable does: the switches see their ports go down (and reroute)
    return {"link": key, **{d: rec[d] for d in DIRECTIONS}}


def apply_impairments(m: "Manifest", rec: dict, new: dict[str, Impairment]) -> None:
    """Make a running link's directions do `new` (direction -> impairment), its ends' segmentation in step
    (keep_frames): off before an impairment that must see packets, back on once it is a delay again. The
    caller saves the manifest."""
    after = {d: new.get(d) or Impairment.from_dict(rec[d]) for d in DIRECTIONS}
    frames = all(imp.frame_safe() for imp in after.values())
    if not frames:
        keep_frames(m, rec, False)  # packets before the loss, duplication or jitter that must see them
    backend = get_backend(rec["backend"])
    for d, imp in new.items():
        backend.apply(rec, d, imp)
    if frames:
        keep_frames(m, rec, True)


def keep_frames(m: "Manifest", rec: dict, on: bool) -> None:
    """Turn TCP segmentation on or off at both ends of a link built to carry 64 KB TCP frames through its
    impairment (`frames` in its record: userspace TSO in force, a constant delay at most: see
    impair.base.shaped) as its impairment becomes, or stops being, one that acts on a frame as on each of
    its packets. Off, the kernel cuts the frames into packets before they reach the impairment point."""
    ends = rec.get("frames")
    if ends is None or bool(rec.get("segmenting")) == on:
        return
    for node, intf in ends:
        r = m.nodes.get(node)
        port = Port(intf, pid=r.pid if r is not None and r.dpid is None else None)
        subprocess.run([*port.ns_prefix(), "sh", "-c", offloads_command(intf, on)], capture_output=True,
                       timeout=30, check=False)  # best effort: a node that is down has no interface to change
    rec["segmenting"] = on


def splice(m: "Manifest", ref: str, layout: "Layout | None" = None) -> tuple[str, dict]:
    """Give a running link an impairment point (none set yet: it passes everything); returns its record."""
    key, _ = find_link(m.wires, ref, "link")
    unpatch(m, key)
    if layout is None:
        from testbed.openflow.layout import make_layout
        from testbed.ran.network import prepare
        from testbed.topology.loader import load

        layout = make_layout(prepare(load(m.topology), m.run_id)[0], m.run_id)
    ln = next((x for x in layout.links if link_key(x.a, x.b) == key), None)
    if ln is None:
        raise UsageError(f"link {key} is not in the run's layout (was the topology file edited?)")
    backend = get_backend(m.impairment_backend)
    m.root_interfaces += [i for i in backend.splice_interfaces(ln, m.run_id) if i not in m.root_interfaces]
    m.save()  # before they exist: a crash in between still leaves teardown the complete list
    ctx = StartContext(run_id=m.run_id, workdir=m.dir / "links",
                       netns_pid={name: r.pid if r.dpid is None else None for name, r in m.nodes.items()})
    bridges = {name: r.internal for name, r in m.nodes.items() if r.dpid is not None}
    handle, rec = backend.splice(ln, ctx, bridges)
    m.links[key] = rec
    if handle.pid:
        m.pids[f"impair-{key}"] = record(handle.pid)
    m.save()
    return key, rec


# -- building ---------------------------------------------------------------------
def add_links(tb: "Testbed") -> list[LinkLayout]:
    """Create every link as the backend wires it; returns the impaired ones.

    The backend's extra root-namespace interfaces are recorded before they exist,
    so a crash mid-build still leaves teardown a complete list.
    """
    lay, m = tb.layout, tb.manifest
    backend = get_backend(m.impairment_backend)
    tb.emit.stage("links", "creating links", total=len(lay.links))
    impaired = [ln for ln in lay.links if needs_impairment(ln)]
    for ln in impaired:
        m.root_interfaces += backend.root_interfaces(ln, m.run_id)
    wirings = {ln.index: backend.wiring(ln, m.run_id) for ln in lay.links}
    patched = patch_links(tb, wirings)
    m.patches = {link_key(ln.a, ln.b): [[lay.internal[ln.a], ln.intf_a, ln.port_a],
                                        [lay.internal[ln.b], ln.intf_b, ln.port_b]] for ln in patched}
    m.save()
    from mininet.link import OVSLink

    from testbed.engine.mn import PairedLink  # Mininet: only in the building process

    patched_ix = {ln.index for ln in patched}
    paired = pair_plain_links(tb, [ln for ln in lay.links if is_plain(wirings[ln.index]) and ln.index not in patched_ix])
    for ln in lay.links:
        kw = wirings[ln.index]
        if ln.index in patched_ix:
            kw = {"cls": OVSLink}  # both ends patch ports: the bridges' batch start-up peers them
        elif ln.index in paired:
            kw = {"cls": PairedLink, "up": None}  # made and (root ends) up already; host ends: configure
        tb.net.addLink(tb.mn_node(ln.a), tb.mn_node(ln.b), port1=ln.port_a, port2=ln.port_b,
                       intfName1=ln.intf_a, intfName2=ln.intf_b, **kw)
        tb.emit.progress("links", ln.index + 1, len(lay.links))
    tb.emit.done("links", f"{len(lay.links)} links")
    return impaired


def is_plain(wiring: dict[str, Any]) -> bool:
    """A link the backend wires as a bare veth pair (no relay, no HTB interface classes)."""
    from mininet.link import Link

    return wiring == {"cls": Link}


def drilled_links(topo) -> set[frozenset[str]]:
    """The links the file's fault drills cut or impair (a node-down: every link of its node)."""
    refs = [r for f in topo.faults for r in f.carrier_refs(topo.links)]
    refs += [f.target for f in topo.faults if f.type == "impair" and f.target]
    return {frozenset(r.split(":", 1)) for r in refs}


def patch_links(tb: "Testbed", wirings: dict[int, dict[str, Any]]) -> list[LinkLayout]:
    """The links built as a pair of OVS patch ports: plain switch-to-switch links (no impairment, no MTU
    of their own) that no fault drill of the file cuts or impairs.

    Why: a veth trunk costs the userspace datapath a socket write and a read per frame and switch, so a
    path's speed fell with every switch it crossed (5 switches 0.16x a bare veth pair, one 0.91x); across
    patch ports a frame crosses all the bridges of its path in one pass. What a patch port cannot do
    (drop its carrier: OVS reports an unpeered one LIVE; carry a relay) waits until it is asked for:
    `unpatch` makes it a veth pair on the same OpenFlow ports then. A drill's link is a veth pair from the
    start, so its cut is as quick as a cable's."""
    lay, drilled = tb.layout, drilled_links(tb.topo)
    eligible = [ln for ln in lay.links if ln.a in lay.dpids and ln.b in lay.dpids and is_plain(wirings[ln.index])
                and not ln.params.mtu and frozenset((ln.a, ln.b)) not in drilled]
    return bounded_groups(eligible)


# Switches joined by patch ports, at most, in one group. Open vSwitch translates a frame across patch ports
# in one recursive pass that stops at 64 crossings (measured here: a chain of 65 bridges passes, 66 drops
# every frame; the same under the slicing app's pipeline, 64 switches passing and 70 not); a route inside a
# group crosses at most its size - 1, and one leaving it over a veth pair starts a new pass.
PATCH_GROUP_MAX = 48


def bounded_groups(links: list[LinkLayout], limit: int = PATCH_GROUP_MAX) -> list[LinkLayout]:
    """The links to patch, in order, such that no group of switches they join exceeds `limit`: a link
    that would join two groups beyond it stays a veth pair (a link inside one group may close a ring)."""
    parent: dict[str, str] = {}
    size: dict[str, int] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        size.setdefault(x, 1)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    out = []
    for ln in links:
        a, b = root(ln.a), root(ln.b)
        if a != b:
            if size[a] + size[b] > limit:
                continue
            parent[b] = a
            size[a] += size[b]
        out.append(ln)
    return out


def unpatch(m: "Manifest", key: str) -> None:
    """Make patch link `key` of running run `m` a veth pair on the same OpenFlow ports (the installed
    rules hold; frames in flight are lost, as on a re-patched cable); nothing for any other link. The
    veth ends carry the names the run recorded for teardown when it began."""
    ends = m.patches.get(key)
    if ends is None:
        return
    from testbed.engine.sockbuf import port_room, port_socket_buffers

    (br_a, if_a, port_a), (br_b, if_b, port_b) = ends
    made = subprocess.run(["ip", "-batch", "-"], input=f"link add {if_a} type veth peer name {if_b}\n"
                          f"link set {if_a} up\nlink set {if_b} up\n", capture_output=True, text=True, timeout=60)
    if made.returncode != 0:
        raise ImpairError(f"link {key}: making its veth pair: {made.stderr.strip()}")
    subprocess.run(["sh", "-c", f"{offloads_command(if_a, m.tso)}; {offloads_command(if_b, m.tso)}; true"],
                   capture_output=True, timeout=60)
    with port_socket_buffers(port_room(m.tso)):
        r = subprocess.run(["ovs-vsctl", "--timeout=10", "--", "del-port", br_a, if_a, "--", "del-port", br_b, if_b,
                            "--", "add-port", br_a, if_a, "--", "set", "Interface", if_a, f"ofport_request={port_a}",
                            "--", "add-port", br_b, if_b, "--", "set", "Interface", if_b, f"ofport_request={port_b}"],
                           capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise ImpairError(f"link {key}: moving its switch ports to a veth pair: {r.stderr.strip()}")
    del m.patches[key]
    m.save()


def pair_plain_links(tb: "Testbed", plain: list[LinkLayout]) -> set[int]:
    """Create the veth pairs of plain links in one `ip -batch` (each end in its node's namespace, a host's
    with its MAC) and bring their root-namespace ends up; the indexes of the links made."""
    lines, up = [], []
    for ln in plain:
        ends = []
        for end, intf in ((ln.a, ln.intf_a), (ln.b, ln.intf_b)):
            node = tb.mn_node(end)
            mac = tb.layout.macs.get(end) if end not in tb.layout.dpids else None
            ends.append(f"name {intf}" + (f" address {mac}" if mac else "")
                        + (f" netns {node.pid}" if node.inNamespace else ""))
            if not node.inNamespace:
                up.append(f"link set dev {intf} up\n")
        lines.append(f"link add {ends[0]} type veth peer {ends[1]}\n")
    if not lines:
        return set()
    r = subprocess.run(["ip", "-batch", "-"], input="".join(lines + up), capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise BuildError(f"creating {len(lines)} veth pairs: {r.stderr.strip()[:500]}")
    return {ln.index for ln in plain}


def start_impairments(tb: "Testbed", impaired: list[LinkLayout]) -> None:
    """Start every impairment point, in parallel (a relay takes ~0.3 s to import and report ready)."""
    m = tb.manifest
    backend = get_backend(m.impairment_backend)
    tb.emit.stage("impairments", f"{backend.name} impairments", total=len(impaired))
    ctx = StartContext(run_id=m.run_id, workdir=m.dir / "links",
                       netns_pid={name: rec.pid if rec.dpid is None else None for name, rec in m.nodes.items()},
                       tso=m.tso)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {pool.submit(backend.start, ln, ctx): ln for ln in impaired}
        for i, fut in enumerate(as_completed(futures)):
            ln = futures[fut]
            handle, rec = fut.result()
            if keeps_frames(ln, m.tso):  # its ends keep 64 KB TCP frames: keep_frames changes that live
                rec.update(frames=[[ln.a, ln.intf_a], [ln.b, ln.intf_b]], segmenting=True)
            key = link_key(ln.a, ln.b)
            tb.link_handles[key] = handle
            m.links[key] = rec
            if handle.pid:  # a helper process carries it: teardown stops it by PID
                m.pids[f"impair-{key}"] = record(handle.pid)
            m.save_throttled()
            tb.emit.progress("impairments", i + 1, len(impaired))
    m.save()
    tb.emit.done("impairments", f"{len(impaired)} links impaired ({backend.name})")
