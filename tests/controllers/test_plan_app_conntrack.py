"""The plan apps encode the stateful rules as OpenFlow 1.3 messages OVS accepts (no switch needed).

Every rule of the minimal topology's plan goes through `add_flow` into a fake datapath, is
serialized by os-ken and parsed back: ct() actions (NXActionCT with the commit flag, zone,
recirculation table and the ct_mark it sets), masked ct_state/tcp_flags/ip_frag matches, and
ip_frag after its prerequisite eth_type (OVS answers OFPBMC_BAD_PREREQ otherwise).
Runs in a fresh interpreter, as the controller process does.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = """
import json
from os_ken.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser, nicira_ext
from controllers.plan_app import add_flow, set_frag_mode
from testbed.openflow.layout import make_layout
from testbed.slicing.plan import controller_plan
from testbed.topology.loader import load

class FakeDP:
    ofproto, ofproto_parser, id = ofp, parser, 1
    def __init__(self): self.sent = []
    def send_msg(self, msg): self.sent.append(msg)
    def set_xid(self, msg): msg.set_xid(len(self.sent) + 1)

topo = load("topologies/minimal.yaml")
plan = controller_plan(topo, make_layout(topo, "3fa2"))
dp = FakeDP()
set_frag_mode(dp, plan["frag_mode"])
rules = [r for rs in plan["switches"].values() for r in rs]
for r in rules:
    add_flow(dp, r)
out = {"cts": [], "frag_order_ok": True, "masked": set(), "n": 0}
cfg = dp.sent[0]
cfg.set_xid(1); cfg.serialize()
out["frag_flags"] = cfg.flags
for msg in dp.sent[1:]:
    msg.set_xid(7)
    msg.serialize()
    back = parser.OFPFlowMod.parser(dp, msg.version, msg.msg_type, msg.msg_len, msg.xid, msg.buf)
    names = [k for k, _ in back.match.items()]
    if "ip_frag" in names and names.index("ip_frag") < names.index("eth_type"):
        out["frag_order_ok"] = False
    out["masked"] |= {k for k, v in back.match.items() if isinstance(v, tuple)}
    for inst in back.instructions:
        for a in getattr(inst, "actions", []):
            if isinstance(a, parser.NXActionCT):
                marks = [x.value for x in a.actions]
                out["cts"].append([a.flags, a.zone_ofs_nbits, a.recirc_table, marks])
    out["n"] += 1
out["masked"] = sorted(out["masked"])
print(json.dumps(out))
"""


def test_stateful_plan_round_trips_through_os_ken():
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(CODE)], capture_output=True, text=True, timeout=120,
                       cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["n"] > 30 and out["frag_order_ok"]
    assert out["frag_flags"] == 3  # OFPC_FRAG_NX_MATCH
    assert {"ct_state", "tcp_flags", "ip_frag"} <= set(out["masked"])
    zone = 0x3FA2
    lookups = [c for c in out["cts"] if c[0] == 0]
    commits = [c for c in out["cts"] if c[0] == 1]  # NX_CT_F_COMMIT
    assert lookups and all(c[1:] == [zone, 1, []] for c in lookups)
    assert commits and all(c[1] == zone and c[2] == 2 and len(c[3]) == 1 for c in commits)
