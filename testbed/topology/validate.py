"""Whole-topology checks that a schema cannot express.

Every check appends to one list so a user fixes a file in one pass. Paths point
at the field that is wrong (not its parent) so the reported line is exact.
"""
from __future__ import annotations

from collections import Counter, defaultdict, deque
from fnmatch import fnmatchcase
from pathlib import Path

from testbed import naming
from testbed.errors import Problem
from testbed import kinds
from testbed.topology import controllerapp
from testbed.topology.faultcheck import check_faults, check_spares
from testbed.topology.model import FIVEQI_PDB_MS, Topology
from testbed.topology.resolve import Routes, assign_addresses, expand_members, is_pattern
from testbed.topology.source import Source

MAX_SWITCH_PORTS = 99  # interface names are <= 15 chars: tbRRRRsNN-ethPP
MAX_NODES_PER_KIND = naming.MAX_PER_KIND  # internal names carry a short index per kind
MAX_BUDGET_PROBLEMS = 5  # per slice: its worst member -> service pairs, then how many more


def validate(topo: Topology, src: Source) -> list[Problem]:
    out: list[Problem] = []
    p = lambda path, msg: out.append(src.problem(path, msg))  # noqa: E731

    _unique(topo.sites, "sites", p)
    _unique(topo.nodes, "nodes", p)
    for coll in ("slices", "workloads", "probes", "faults"):
        _unique(getattr(topo, coll), coll, p)

    site_names = {s.name for s in topo.sites}
    node_kind = {n.name: n.kind for n in topo.nodes}
    for i, n in enumerate(topo.nodes):
        if n.site is not None and n.site not in site_names:
            p(("nodes", i, "site"), f"unknown site {n.site!r}")
        kind = kinds.get(n.kind)
        if not kind.offers_services and any(s.name not in kind.implicit_services for s in n.services):
            p(("nodes", i, "services"), f"a {n.kind} does not offer services")
        ports = Counter((s.proto, s.port) for s in n.services)
        for (proto, port), count in ports.items():
            if count > 1:
                p(("nodes", i, "services"), f"{proto}/{port} is offered twice")
        if kind.switch and (n.ip is not None or n.runtime == "docker"):
            p(("nodes", i, "ip" if n.ip is not None else "runtime"), "a switch has no address or container")

    _node_counts(topo, p)
    _links(topo, node_kind, p)
    _addresses(topo, p)
    _slices(topo, node_kind, site_names, p)
    _ran(topo, node_kind, p)
    _traffic(topo, node_kind, src.file, p)
    if not out:  # paths need a sound graph: every name known, each host on one link
        _budgets(topo, p)
    _controller(topo, src.file, p)
    return out


def _unique(items: list, coll: str, p) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.name in seen:
            p((coll, i, "name"), f"duplicate name {item.name!r}")
        seen.add(item.name)


def _node_counts(topo: Topology, p) -> None:
    """A run names each switch and host with a short index; more than it can hold cannot be built."""
    for label, is_kind in (("switches", kinds.is_switch), ("hosts", lambda k: not kinds.is_switch(k))):
        indexes = [i for i, n in enumerate(topo.nodes) if is_kind(n.kind)]
        if len(indexes) > MAX_NODES_PER_KIND:
            first_over = indexes[MAX_NODES_PER_KIND]
            p(("nodes", first_over, "name"),
              f"{len(indexes)} {label}; a testbed holds at most {MAX_NODES_PER_KIND} {label}")


def _links(topo: Topology, node_kind: dict[str, str], p) -> None:
    degree: Counter[str] = Counter()
    adj: dict[str, set[str]] = defaultdict(set)
    seen_pairs: set[frozenset[str]] = set()
    for i, link in enumerate(topo.links):
        a, b = link.endpoints
        ok = True
        for j, end in enumerate(link.endpoints):
            if end not in node_kind:
                p(("links", i, "endpoints", j), f"unknown node {end!r}")
                ok = False
        if not ok:
            continue
        if a == b:
            p(("links", i, "endpoints"), f"a link cannot connect {a!r} to itself")
            continue
        if not kinds.is_switch(node_kind[a]) and not kinds.is_switch(node_kind[b]):
            p(("links", i, "endpoints"), f"{a!r} and {b!r} are both hosts; one end of a link must be a switch")
        pair = frozenset((a, b))
        if pair in seen_pairs and not (kinds.is_switch(node_kind[a]) and kinds.is_switch(node_kind[b])):
            p(("links", i, "endpoints"), f"duplicate link between {a!r} and {b!r}")
        seen_pairs.add(pair)
        for where, imp in (((), link), (("a_to_b",), link.a_to_b), (("b_to_a",), link.b_to_a)):
            if imp is not None and (imp.loss_burst or 1) > 1 and (imp.loss or 0) >= 100:
                p(("links", i, *where, "loss"), "bursty loss must be below 100% (to cut a link use a link-down fault)")
        degree[a] += 1
        degree[b] += 1
        adj[a].add(b)
        adj[b].add(a)
    for i, n in enumerate(topo.nodes):
        if kinds.get(n.kind).host and degree[n.name] == 0:
            p(("nodes", i, "name"), f"host {n.name!r} has no link")
        elif kinds.get(n.kind).host and degree[n.name] > 1:
            p(("nodes", i, "name"), f"host {n.name!r} has {degree[n.name]} links; a host has exactly one")
        elif kinds.is_switch(n.kind) and degree[n.name] > MAX_SWITCH_PORTS:
            p(("nodes", i, "name"), f"switch {n.name!r} has {degree[n.name]} ports (at most {MAX_SWITCH_PORTS})")
    # One connected network: an island can never reach anything and is always a typo.
    # The main network is the one holding the first node that has a link (a host with
    # no link was reported above); every other island is reported once, at its first node.
    reached: set[str] = set()
    main: str | None = None
    for i, n in enumerate(topo.nodes):
        if degree[n.name] == 0 or n.name in reached:
            continue
        island = _component(n.name, adj)
        reached |= island
        if main is None:
            main = n.name
            continue
        others = sorted(island - {n.name})
        shown = ", ".join(map(repr, others[:3])) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        p(("nodes", i, "name"), f"{n.name!r} is not connected to {main!r}" + (f" (island with {shown})" if others else ""))


def _component(start: str, adj: dict[str, set[str]]) -> set[str]:
    """Every node reachable from `start` (breadth first)."""
    reached, todo = {start}, deque([start])
    while todo:
        for nxt in adj[todo.popleft()]:
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    return reached


def _addresses(topo: Topology, p) -> None:
    pool = topo.defaults.addressing.pool
    seen: dict[str, str] = {}
    for i, n in enumerate(topo.nodes):
        if n.ip is None:
            continue
        if n.ip.ip not in pool:
            p(("nodes", i, "ip"), f"{n.ip.ip} is outside the address pool {pool}")
        elif n.ip.ip in (pool.network_address, pool.broadcast_address):
            p(("nodes", i, "ip"), f"{n.ip.ip} is the pool's network or broadcast address")
        if str(n.ip.ip) in seen:
            p(("nodes", i, "ip"), f"{n.ip.ip} is already used by {seen[str(n.ip.ip)]!r}")
        seen[str(n.ip.ip)] = n.name
    macs: dict[str, str] = {}
    for i, n in enumerate(topo.nodes):
        if n.mac:
            if n.mac.lower() in macs:
                p(("nodes", i, "mac"), f"{n.mac} is already used by {macs[n.mac.lower()]!r}")
            macs[n.mac.lower()] = n.name
    try:
        assign_addresses(topo)
    except ValueError as exc:
        p(("defaults", "addressing", "pool"), str(exc))


def _member_ok(ref: str, node_kind: dict[str, str], site_names: set[str]) -> str | None:
    if ref.startswith("site:"):
        return None if ref[5:] in site_names else f"unknown site {ref[5:]!r}"
    if ref.startswith("kind:"):
        return None if ref[5:] in kinds.host_kinds() else f"unknown host kind {ref[5:]!r}"
    if is_pattern(ref):
        hosts = [name for name, kind in node_kind.items() if not kinds.is_switch(kind)]
        return None if any(fnmatchcase(name, ref) for name in hosts) else f"pattern {ref!r} matches no host"
    if ref not in node_kind:
        return f"unknown node {ref!r}"
    if kinds.is_switch(node_kind[ref]):
        return f"{ref!r} is a switch; slice members are hosts"
    return None


def _service_ok(ref: str, topo: Topology) -> str | None:
    if ":" in ref:
        node, svc = ref.split(":", 1)
        try:
            n = topo.node(node)
        except KeyError:
            return f"unknown node {node!r}"
        return None if any(s.name == svc for s in n.services) else f"{node!r} offers no service {svc!r}"
    if not any(s.name == ref for n in topo.nodes for s in n.services):
        return f"no node offers service {ref!r}"
    return None


def _slices(topo: Topology, node_kind: dict[str, str], site_names: set[str], p) -> None:
    for i, s in enumerate(topo.slices):
        if s.fiveqi not in FIVEQI_PDB_MS:
            p(("slices", i, "fiveqi"), f"{s.fiveqi} is not a standardised 5QI (TS 23.501 table 5.7.4-1)")
        for j, ref in enumerate(s.members):
            if (msg := _member_ok(ref, node_kind, site_names)) is not None:
                p(("slices", i, "members", j), msg)
        for j, ref in enumerate(s.services):
            if (msg := _service_ok(ref, topo)) is not None:
                p(("slices", i, "services", j), msg)
    ids = Counter((s.sst, (s.sd or "").lower()) for s in topo.slices)
    for i, s in enumerate(topo.slices):
        if ids[(s.sst, (s.sd or "").lower())] > 1:
            p(("slices", i, "sd"), f"S-NSSAI sst={s.sst} sd={s.sd} is used by more than one slice")


def _providers(topo: Topology, refs: list[str]) -> list[tuple[str, str]]:
    """(node, service) for each service a slice grants: 'NODE:SERVICE', or every node offering SERVICE."""
    out: dict[tuple[str, str], None] = {}
    for ref in refs:
        node, _, svc = ref.rpartition(":")
        for n in topo.nodes:
            if (not node or n.name == node) and any(s.name == svc for s in n.services):
                out[(n.name, svc)] = None
    return list(out)


def _budgets(topo: Topology, p) -> None:
    """A slice's budget must hold on paper: the configured one-way delay between each member and each
    service its slice grants, along the path the controller routes (shortest by hops), in either
    direction, must not exceed the slice's latency budget. Otherwise no network run can meet it;
    the file is wrong, not the network. Located at the budget (or the 5QI it defaults from)."""
    routes = Routes(topo)
    for i, s in enumerate(topo.slices):
        budget = s.budget_ms
        if budget is None:  # an unknown 5QI: reported above
            continue
        where = ("slices", i, "latency_budget" if s.latency_budget is not None else "fiveqi")
        whose = "latency budget" if s.latency_budget is not None else f"budget (5QI {s.fiveqi}'s packet delay budget)"
        over: list[tuple[float, str, str, str, list[str]]] = []
        for member in expand_members(topo, s.members):
            for node, svc in _providers(topo, s.services):
                if node == member.name:
                    continue
                ways = [routes.delay_ms(member.name, node), routes.delay_ms(node, member.name)]
                worst = max((w for w in ways if w is not None), default=None, key=lambda w: w[0])
                if worst is not None and worst[0] > budget + 1e-9:
                    over.append((worst[0], member.name, node, svc, worst[1]))
        over.sort(key=lambda o: (-o[0], o[1], o[2]))
        for delay, member, node, svc, path in over[:MAX_BUDGET_PROBLEMS]:
            p(where, f"{member} <-> {node} ({svc}): {delay:g} ms configured one-way delay along "
                     f"{' - '.join(path)} exceeds the slice's {budget:g} ms {whose}")
        if len(over) > MAX_BUDGET_PROBLEMS:
            p(where, f"and {len(over) - MAX_BUDGET_PROBLEMS} more member -> service pairs exceed "
                     f"the slice's {budget:g} ms {whose}")


def _ran(topo: Topology, node_kind: dict[str, str], p) -> None:
    slices = {s.name: s for s in topo.slices}
    seen: set[str] = set()
    for i, b in enumerate(topo.ran.ues):
        for key, ref in (("ue", b.ue), ("gnb", b.gnb)):
            if ref not in node_kind:
                p(("ran", "ues", i, key), f"unknown node {ref!r}")
            elif kinds.get(node_kind[ref]).ran_role != key:
                p(("ran", "ues", i, key), f"{ref!r} is not a node of kind {key}")
        for j, ref in enumerate(b.gnbs or []):
            if ref not in node_kind:
                p(("ran", "ues", i, "gnbs", j), f"unknown node {ref!r}")
            elif kinds.get(node_kind[ref]).ran_role != "gnb":
                p(("ran", "ues", i, "gnbs", j), f"{ref!r} is not a node of kind gnb")
            elif ref == b.gnb or ref in (b.gnbs or [])[:j]:
                p(("ran", "ues", i, "gnbs", j), f"{ref!r} is listed twice (with gnb, the UE's first gNB)")
        if b.ue in seen:
            p(("ran", "ues", i, "ue"), f"UE {b.ue!r} is bound twice")
        seen.add(b.ue)
        for j, sess in enumerate(b.sessions):
            sl = slices.get(sess.slice)
            if sl is None:
                p(("ran", "ues", i, "sessions", j, "slice"), f"unknown slice {sess.slice!r}")
            elif b.ue in node_kind:
                from testbed.topology.resolve import expand_members

                if b.ue not in {n.name for n in expand_members(topo, sl.members)}:
                    p(("ran", "ues", i, "sessions", j, "slice"),
                      f"UE {b.ue!r} is not on slice {sl.name!r}'s whitelist (members)")


def _traffic(topo: Topology, node_kind: dict[str, str], file: str, p) -> None:
    slices = {s.name for s in topo.slices}
    services = {s.name for n in topo.nodes for s in n.services}
    for i, w in enumerate(topo.workloads):
        for j, ref in enumerate(w.src):
            if ref not in node_kind or kinds.is_switch(node_kind[ref]):
                p(("workloads", i, "from", j), f"unknown host {ref!r}")
        if w.dst not in services and (w.dst not in node_kind or kinds.is_switch(node_kind[w.dst])):
            p(("workloads", i, "to"), f"{w.dst!r} is neither a host nor a service")
        if w.slice is not None and w.slice not in slices:
            p(("workloads", i, "slice"), f"unknown slice {w.slice!r}")
        if w.duration <= 0:
            p(("workloads", i, "duration"), "duration must be positive")
    for i, pr in enumerate(topo.probes):
        for key, refs in (("from", pr.src), ("to", pr.dst)):
            for j, ref in enumerate(refs):
                if ref not in node_kind and ref not in services:
                    p(("probes", i, key, j), f"unknown node or service {ref!r}")
                elif pr.type == "script" and (ref not in node_kind or kinds.is_switch(node_kind[ref])):
                    where = "runs in" if key == "from" else "is captured at"
                    p(("probes", i, key, j), f"a script probe {where} a host node; {ref!r} is "
                                             + ("a switch" if ref in node_kind else "a service"))
        _script(pr, i, file, p)
    check_faults(topo, node_kind, services, p)
    check_spares(topo, p)


def _controller(topo: Topology, file: str, p) -> None:
    """The app must be one the controller process will find (a .py path relative to this file), as
    the engine resolves it (controllerapp.locate). A remote controller runs no app of ours."""
    app = topo.controller.app
    if topo.controller.remote is None and (msg := controllerapp.problem(app, Path(file).parent)):
        rel = app.endswith(".py") and not Path(app).is_absolute()
        p(("controller", "app"), msg + (" (a .py app is relative to the topology file)" if rel else ""))


def script_path(script: str, topology_file: str) -> Path:
    """A probe's `script:` as a path: relative to the topology file's directory."""
    path = Path(script)
    return path if path.is_absolute() else Path(topology_file).parent / path


def _script(pr, i: int, file: str, p) -> None:
    if pr.type != "script":
        if pr.script is not None:
            p(("probes", i, "script"), f"only a script probe runs a script (this one is type {pr.type})")
        return
    if pr.script is None:
        p(("probes", i, "type"), "a script probe needs `script:`, a Python file relative to this topology file")
        return
    path = script_path(pr.script, file)
    if not path.is_file():
        p(("probes", i, "script"), f"no such file: {path}")
