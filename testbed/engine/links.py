"""Link impairments in a built network: where relays sit, and how links change live.

A link with delay, jitter or loss gets an impairment point. With netem (kernels
that have it) that is a netem qdisc on each end's egress. Without it, the link
is built as two veth pairs with a userspace relay between their root-namespace
ends (node A | A-eth <-> rA | relay | rB <-> B-eth | node B). Either way the
manifest records how to reach it, so `testbed link set` in another process can
change it while the run is up, and faults (link down/up) use the same path.
"""
from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mininet.link import Link

from testbed import naming
from testbed.openflow.layout import LinkLayout
from testbed.errors import UsageError
from testbed.impair import Impairment, ImpairError, NetemBackend, Port, start_relay
from testbed.impair.backends import choose_backend  # noqa: F401  (re-exported for the engine)
from testbed.impair.netem import NetemLink
from testbed.impair.userspace import control_request
from testbed.engine.procs import record
from testbed.topology.model import Impair, LinkParams

if TYPE_CHECKING:
    from testbed.engine.testbed import Testbed

def needs_impairment(ln: LinkLayout) -> bool:
    """Any impairment setting given (even 0) makes the link changeable at run time."""
    return any(x is not None and x.is_set() for x in (ln.params, ln.a_to_b, ln.b_to_a))


def impairment_of(p: LinkParams, backend: str, override: Impair | None = None) -> Impairment:
    """One direction's settings: the link's (layered) values, then that direction's overrides."""
    def get(field: str):
        value = getattr(override, field, None) if override is not None else None
        return getattr(p, field) if value is None else value

    loss_burst = get("loss_burst") or 1.0
    return Impairment(delay_ms=get("delay") or 0.0, jitter_ms=get("jitter") or 0.0,
                      jitter_dist=get("jitter_dist") or "normal", loss_pct=get("loss") or 0.0,
                      loss_model="gilbert" if loss_burst > 1 else "random", loss_burst=loss_burst,
                      duplicate_pct=get("duplicate") or 0.0, reorder_pct=get("reorder") or 0.0,
                      rate_bps=p.bw if backend == "netem" else None)


def relay_ends(run_id: str, index: int) -> tuple[str, str]:
    base = f"{naming.run_prefix(run_id)}r{naming.b36(index)}"
    return base + "a", base + "b"


class RelayLink(Link):
    """A Mininet link built as two veth pairs whose inner ends stay in the root namespace."""

    def __init__(self, node1, node2, relay_ends: tuple[str, str] = ("", ""), **params: Any):
        self.relay_ends = relay_ends
        super().__init__(node1, node2, **params)

    def makeIntfPair(self, intfname1, intfname2, addr1=None, addr2=None, node1=None, node2=None,
                     deleteIntfs=True):
        ra, rb = self.relay_ends
        for node, intf, addr, end in ((node1, intfname1, addr1, ra), (node2, intfname2, addr2, rb)):
            mac = f" address {addr}" if addr else ""
            out = node.cmd(f"ip link add name {intf}{mac} type veth peer name {end} netns 1")
            if out.strip():
                raise ImpairError(f"creating {intf}<->{end}: {out.strip()}")


def start(ln: LinkLayout, backend: str, pid_of: dict[str, int | None], workdir: Path,
          run_id: str) -> tuple[Any, dict]:
    """Start the impairment of one built link; returns (handle, manifest record)."""
    ab, ba = impairment_of(ln.params, backend, ln.a_to_b), impairment_of(ln.params, backend, ln.b_to_a)
    rec: dict[str, Any] = {"a": ln.a, "b": ln.b, "backend": backend, "a_to_b": ab.to_dict(), "b_to_a": ba.to_dict()}
    if backend == "userspace":
        ra, rb = relay_ends(run_id, ln.index)
        workdir.mkdir(parents=True, exist_ok=True)
        stem = workdir / naming.b36(ln.index)  # short: unix socket paths are limited to ~100 bytes
        handle = start_relay(ra, rb, ab, ba, stem.with_suffix(".sock"), stem.with_suffix(".log"))
        rec.update(control=str(handle.control_path), relay_pid=handle.pid)
    else:
        pa, pb = (Port(ln.intf_a, pid=pid_of.get(ln.a)), Port(ln.intf_b, pid=pid_of.get(ln.b)))
        handle = NetemBackend().impair_link(pa, pb, ab, ba, workdir)
        rec.update(intf_a=ln.intf_a, intf_b=ln.intf_b, pid_a=pid_of.get(ln.a), pid_b=pid_of.get(ln.b))
    return handle, rec


def link_key(a: str, b: str) -> str:
    return f"{a}:{b}"


def find_link(links: dict, ref: str, what: str = "changeable link") -> tuple[str, Any]:
    """'A:B' or 'B:A' -> the link record; a clear error listing choices otherwise."""
    if ref in links:
        return ref, links[ref]
    a, _, b = ref.partition(":")
    if link_key(b, a) in links:
        return link_key(b, a), links[link_key(b, a)]
    choices = ", ".join(sorted(links)[:12]) or "none (give a link delay/jitter/loss, even 0ms, to make it changeable)"
    raise UsageError(f"no {what} {ref!r}; {what}s: {choices}")


def apply(rec: dict, direction: str, imp: Impairment) -> None:
    """Change one direction of a running link from any process (manifest record only)."""
    if rec["backend"] == "userspace":
        reply = control_request(Path(rec["control"]),
                                {"cmd": "set", "direction": direction, "impairment": imp.to_dict()})
        if not reply.get("ok"):
            raise ImpairError(f"relay refused the change: {reply.get('error')}")
    else:
        ports = {"a_to_b": Port(rec["intf_b"], pid=rec["pid_b"]), "b_to_a": Port(rec["intf_a"], pid=rec["pid_a"])}
        nl = NetemLink.__new__(NetemLink)  # attach to the existing qdiscs without re-creating them
        nl.ports, nl.current, nl.stopped = ports, {}, False
        nl.set(direction, imp)
    rec[direction] = imp.to_dict()


def set_carrier(m, ref: str, up: bool) -> str:
    """Cut or restore any link by its switch ports (links without an impairment point)."""
    key, ends = find_link(m.wires, ref, "link")
    for intf in ends:
        r = subprocess.run(["ip", "link", "set", "dev", intf, "up" if up else "down"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise ImpairError(f"link {key}: {r.stderr.strip()}")
    return key


def set_link(m, ref: str, items: list[str], direction: str = "both") -> dict:
    """Apply `delay=20ms loss=1%` / `down` / `up` to a running link of manifest `m`; saves it.

    Any link can go down and up (fault injection); the other settings need the
    link's impairment point, which links with any impairment setting have.
    """
    from testbed.impair import apply_assignments

    if items in (["down"], ["up"]) and direction == "both":
        try:
            find_link(m.links, ref)
        except UsageError:
            key = set_carrier(m, ref, items == ["up"])
            return {"link": key, "state": items[0]}
    key, rec = find_link(m.links, ref)
    dirs = ["a_to_b", "b_to_a"] if direction == "both" else [direction]
    if any(d not in ("a_to_b", "b_to_a") for d in dirs):
        raise UsageError(f"direction must be a_to_b, b_to_a or both, got {direction!r}")
    for d in dirs:
        try:
            new = apply_assignments(Impairment.from_dict(rec[d]), items)
        except ValueError as exc:
            raise UsageError(f"link {key}: {exc}") from None
        apply(rec, d, new)
    m.save()
    return {"link": key, **{d: rec[d] for d in ("a_to_b", "b_to_a")}}


# -- building ---------------------------------------------------------------------
def link_kwargs(ln: LinkLayout, backend: str, run_id: str) -> dict[str, Any]:
    """Mininet link class and parameters: HTB for rate, a relay pair where impaired."""
    from mininet.link import TCIntf

    p = ln.params
    kw: dict[str, Any] = {"cls": Link}
    htb = p.bw is not None and not (backend == "netem" and needs_impairment(ln))
    if htb:
        kw.update(cls1=TCIntf, cls2=TCIntf, params1={"bw": p.bw / 1e6}, params2={"bw": p.bw / 1e6})
    if backend == "userspace" and needs_impairment(ln):
        kw.update(cls=RelayLink, relay_ends=relay_ends(run_id, ln.index))
    return kw


def add_links(tb: "Testbed") -> list[LinkLayout]:
    """Create every link (a relay pair where impaired); returns the impaired ones."""
    lay, m = tb.layout, tb.manifest
    tb.emit.stage("links", "creating links", total=len(lay.links))
    impaired = [ln for ln in lay.links if needs_impairment(ln)]
    for ln in impaired:
        if m.impairment_backend == "userspace":
            m.root_interfaces += list(relay_ends(m.run_id, ln.index))
    m.save()
    for ln in lay.links:
        tb.net.addLink(tb.mn_node(ln.a), tb.mn_node(ln.b), port1=ln.port_a, port2=ln.port_b,
                       intfName1=ln.intf_a, intfName2=ln.intf_b, **link_kwargs(ln, m.impairment_backend, m.run_id))
        tb.emit.progress("links", ln.index + 1, len(lay.links))
    tb.emit.done("links", f"{len(lay.links)} links")
    return impaired


def start_impairments(tb: "Testbed", impaired: list[LinkLayout]) -> None:
    """Start every impairment point, in parallel (a relay takes ~0.3 s to import and report ready)."""
    m = tb.manifest
    tb.emit.stage("impairments", f"{m.impairment_backend} impairments", total=len(impaired))
    pids = {name: rec.pid if rec.dpid is None else None for name, rec in m.nodes.items()}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {pool.submit(start, ln, m.impairment_backend, pids, m.dir / "links", m.run_id): ln
                   for ln in impaired}
        for i, fut in enumerate(as_completed(futures)):
            ln = futures[fut]
            handle, rec = fut.result()
            key = link_key(ln.a, ln.b)
            tb.link_handles[key] = handle
            m.links[key] = rec
            if rec.get("relay_pid"):
                m.pids[f"relay-{key}"] = record(rec["relay_pid"])
            m.save_throttled()
            tb.emit.progress("impairments", i + 1, len(impaired))
    m.save()
    tb.emit.done("impairments", f"{len(impaired)} links impaired ({m.impairment_backend})")
