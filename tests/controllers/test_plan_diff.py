"""What a running controller sends when the plan changes: the difference, judged by value.

`diff` keys a rule by (table, priority, match) with the match's fields in a canonical order and compares
what it does as values, not as serialized text: a match written in another order is the same rule (if it
were two keys, the new one would be added and the old one then deleted: the same rule, gone), and any
change of action, meter, goto or cookie is re-sent. Runs in a fresh interpreter (os-ken), as the app does.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = """
import copy, json
from controllers.plan_app import diff

rule = {"table": 0, "priority": 200, "cookie": 7,
        "match": {"in_port": 3, "eth_type": 2048, "ipv4_src": "10.77.0.1", "ct_state": [33, 55]},
        "actions": [{"ct": {"zone": 9, "table": 1}}]}
shuffled = copy.deepcopy(rule)
shuffled["match"] = dict(reversed(list(rule["match"].items())))
shuffled["actions"] = [{"ct": {"table": 1, "zone": 9}}]
out = {"same": diff([rule], [], [shuffled], [])}
for field, value in (("actions", [{"output": 4}]), ("cookie", 8), ("goto", 2), ("meter", 1)):
    changed = dict(copy.deepcopy(rule), **{field: value})
    out[field] = diff([rule], [], [changed], [])
other = copy.deepcopy(rule)
other["match"]["ipv4_src"] = "10.77.0.2"
out["other"] = diff([rule], [], [other], [])
m = {"meter_id": 1, "rate_kbps": 1000}
out["meters"] = diff([], [m], [], [dict(m, rate_kbps=2000), {"meter_id": 2, "rate_kbps": 5}])
print(json.dumps(out))
"""


def test_diff_judges_rules_by_value():
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(CODE)], capture_output=True, text=True, cwd=REPO,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["same"] == [[], [], [], [], []]  # field order is not a change
    for field in ("actions", "cookie", "goto", "meter"):
        added, removed = got[field][0], got[field][1]
        assert len(added) == 1 and removed == [], field  # changed in place: re-added, never deleted
    added, removed = got["other"][0], got["other"][1]
    assert [a["match"]["ipv4_src"] for a in added] == ["10.77.0.2"]
    assert [x["match"]["ipv4_src"] for x in removed] == ["10.77.0.1"]
    m_add, m_mod, m_del = got["meters"][2:]
    assert [m["meter_id"] for m in m_add] == [2] and [m["rate_kbps"] for m in m_mod] == [2000] and m_del == []
