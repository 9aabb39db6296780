"""The controller's cached matches and instructions put the same bytes on the wire as os-ken builds.

PlanApp builds each distinct match once, serialized by hand from os-ken's own field converters, and
reuses instruction objects across rules (controllers/plan_app.py, `_Built`): a switch's whole table is
sent again at every (re)connect, and building every OFPMatch anew cost most of a restarted controller's
time. Here every rule of the reference alliance's plan (all slices, the 5G path, conntrack, masks,
fragments) is built both ways in a fresh interpreter, as the controller runs, and the flow mods must be
byte for byte the same; a match whose bytes are tampered with must be caught.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed.engine.ran import run_controller_plan
from testbed.openflow.layout import make_layout
from testbed.ran.network import prepare
from testbed.topology.loader import load

REPO = Path(__file__).resolve().parents[2]

CODE = """
import json, sys
from os_ken.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser
import controllers.plan_app as pa

plan = json.load(open(sys.argv[1]))
tamper = sys.argv[2] == "tamper"

class FakeDP:
    ofproto, ofproto_parser, id = ofp, parser, 1
    def __init__(self): self.sent, self.xid = [], 0
    def set_xid(self, msg):
        self.xid += 1; msg.set_xid(self.xid); return self.xid
    def send_msg(self, msg):
        self.set_xid(msg); msg.serialize(); self.sent.append(bytes(msg.buf))

def match_of(match):  # os-ken's own OFPMatch, with ip_frag after its prerequisite, as add_flow built it before
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in match.items()}
    late = [(k, kw.pop(k)) for k in ("ip_frag",) if k in kw]
    m = parser.OFPMatch(**kw)
    return parser.OFPMatch(_ordered_fields=list(m.items()) + late) if late else m

def reference(dp, rule):  # what add_flow sent before the cache: os-ken's OFPMatch, new objects each time
    dp.send_msg(parser.OFPFlowMod(datapath=dp, table_id=rule.get("table", 0), priority=rule["priority"],
                                  match=match_of(rule["match"]),
                                  instructions=pa.instructions_of(parser, ofp, rule),
                                  cookie=int(rule.get("cookie", 0))))

if tamper:  # one field's value changed after its bytes are computed: the comparison must see it
    real = pa._wire_match
    def bad(parser_, ofp_, match):
        m = real(parser_, ofp_, match)
        if "ipv4_src" in match:
            m.wire = m.wire[:-9] + bytes([m.wire[-9] ^ 1]) + m.wire[-8:]
        return m
    pa._wire_match = bad

rules = same = 0
fields = set()
for dpid, rs in plan["switches"].items():
    a, b = FakeDP(), FakeDP()
    for r in rs:
        pa.add_flow(a, r)
        reference(b, r)
        fields |= {k + ("/masked" if isinstance(v, list) else "") for k, v in r["match"].items()}
    rules += len(rs)
    same += sum(x == y for x, y in zip(a.sent, b.sent))
print(json.dumps({"rules": rules, "same": same, "fields": sorted(fields)}))
"""


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    topo, ran = prepare(load(REPO / "topologies" / "xiangtan-alliance.yaml"), "ab12")
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    path.write_text(json.dumps(run_controller_plan(topo, make_layout(topo, "ab12"), ran, {}, {})))
    return path


def _build(plan_file: Path, how: str) -> dict:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(CODE), str(plan_file), how], capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_every_flow_mod_of_the_reference_is_the_same_bytes(plan_file):
    got = _build(plan_file, "cached")
    assert got["rules"] > 5000
    assert got["same"] == got["rules"]
    # the plan exercises what the hand serialization must get right: masks, Nicira fields, the late ip_frag
    assert {"ct_state/masked", "tcp_flags/masked", "ip_frag/masked", "eth_src", "ipv4_src", "in_port"} <= set(got["fields"])


def test_a_wrong_byte_in_a_cached_match_is_caught(plan_file):
    got = _build(plan_file, "tamper")
    assert 0 < got["same"] < got["rules"]
