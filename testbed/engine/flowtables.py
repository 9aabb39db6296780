"""Read back what every switch of a run holds, for `testbed verify` (not what the controller meant to install).

Reading from the switches is the point: a rule the controller failed to install,
one deleted by hand (`ovs-ofctl del-flows`) or one a foreign app added changes
what can get through, and the proof must see it.
"""
from __future__ import annotations

import json

from testbed.engine.ovs import dump_flows, get_frags
from testbed.engine.rundir import Manifest
from testbed.errors import TestbedError
from testbed.verify.flowtext import parse_flows


def run_plan(m: Manifest) -> dict:
    """The run's controller plan (policy, hosts, trunks): what the tables are checked against."""
    path = m.dir / "plan.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TestbedError(f"run {m.run_id}: cannot read its plan {path}: {exc}") from exc


def read_tables(m: Manifest) -> tuple[dict[str, list[dict]], str]:
    """dpid -> the rules its bridge holds now, and the switches' fragment mode."""
    tables: dict[str, list[dict]] = {}
    frags: set[str] = set()
    for rec in sorted(m.nodes.values(), key=lambda r: r.name):
        if rec.dpid is None:
            continue
        try:
            tables[rec.dpid] = parse_flows(dump_flows(rec.internal))
            frags.add(get_frags(rec.internal))
        except RuntimeError as exc:
            raise TestbedError(f"cannot read the flow table of {rec.name} ({rec.internal}): {exc}") from exc
    if len(frags) > 1:
        raise TestbedError(f"the run's switches disagree on fragment handling ({', '.join(sorted(frags))})")
    return tables, (frags.pop() if frags else "normal")
