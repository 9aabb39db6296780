"""A (re)connected switch gets the plan in one atomic bundle, and no meter is deleted.

A restarted controller finds its switches still forwarding by the rules they kept (fail secure); the
replacement must leave no moment with an empty table (the robustness test of the controller kill
measures the loss). Here the messages are checked without a switch: send_bundle wraps every flow mod
in an ONF bundle add with the inner message's xid, between an open and a commit of the same atomic,
ordered bundle, serialized by os-ken and parsed back. Runs in a fresh interpreter, as the controller does.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = """
import json, struct
from os_ken.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser
from controllers.plan_app import _Collect, add_flow, send_bundle

class FakeDP:
    ofproto, ofproto_parser, id = ofp, parser, 1
    def __init__(self): self.sent, self.xid, self.buffers = [], 0, 0
    def send_msg(self, msg):
        if msg.xid is None: self.set_xid(msg)
        msg.serialize(); self.sent.append(msg)
    def send(self, buf):  # raw bytes, as os-ken's Datapath.send: split into messages by their headers
        self.buffers += 1
        while buf:
            version, msg_type, msg_len, xid = struct.unpack_from("!BBHI", buf)
            m = parser.msg_parser(self, version, msg_type, msg_len, xid, bytes(buf[:msg_len]))
            m.buf, m.msg_type, m.msg_len = bytes(buf[:msg_len]), msg_type, msg_len
            self.sent.append(m)
            buf = buf[msg_len:]
    def set_xid(self, msg):
        self.xid += 1; msg.set_xid(self.xid); return self.xid

dp = FakeDP()
bundle = _Collect(dp)
bundle.send_msg(parser.OFPFlowMod(datapath=dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                  out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
for port in (1, 2, 3):
    add_flow(bundle, {"table": 0, "priority": 10, "match": {"in_port": port}, "actions": [{"output": 4}]})
assert not dp.sent  # collected, nothing sent yet
send_bundle(dp, bundle.msgs)
out = []
for m in dp.sent:
    back = parser.msg_parser(dp, ofp.OFP_VERSION, m.msg_type, m.msg_len, m.xid, bytes(m.buf))
    row = {"type": type(back).__name__, "xid": back.xid}
    if isinstance(back, parser.ONFBundleCtrlMsg):
        row.update(bundle=back.bundle_id, ctrl=back.type, flags=back.flags)
    elif isinstance(back, parser.ONFBundleAddMsg) or type(back).__name__ == "OFPExperimenter":
        row["body"] = bytes(m.buf[16:]).hex()
    out.append(row)
inner = [(msg.xid, msg.command) for msg in bundle.msgs]
print(json.dumps({"rows": out, "inner": inner, "buffers": dp.buffers, "atomic": ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED,
                  "open": ofp.ONF_BCT_OPEN_REQUEST, "commit": ofp.ONF_BCT_COMMIT_REQUEST}))
"""


def test_the_plan_goes_in_as_one_atomic_bundle():
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(CODE)], capture_output=True, text=True, cwd=REPO,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    rows = got["rows"]
    assert len(rows) == 2 + 4  # open, 4 adds (the delete-all first), commit
    assert got["buffers"] == 1  # one write of the whole bundle, not a send per message
    first, last, adds = rows[0], rows[-1], rows[1:-1]
    assert first["type"] == last["type"] == "ONFBundleCtrlMsg"
    assert (first["ctrl"], last["ctrl"]) == (got["open"], got["commit"])
    assert first["bundle"] == last["bundle"] and first["flags"] == last["flags"] == got["atomic"]
    # each add carries its flow mod with the flow mod's own xid (the extension requires it), in order
    assert [a["xid"] for a in adds] == [xid for xid, _ in got["inner"]]
    assert got["inner"][0][1] == 3  # OFPFC_DELETE first, inside the bundle: no moment with an empty table
    assert all(c == 0 for _, c in got["inner"][1:])  # then the adds
    bundle_id = f"{first['bundle']:08x}"
    for a in adds:  # on the wire: bundle id, flags, then the OpenFlow 1.3 flow mod with the same xid
        assert a["body"].startswith(bundle_id + "0000" + f"{got['atomic']:04x}"), a  # id, pad, flags
        assert a["body"][16:20] == "040e" and int(a["body"][24:32], 16) == a["xid"], a


def test_install_all_deletes_no_meter_and_sends_flows_only_in_the_bundle():
    src = (REPO / "controllers" / "plan_app.py").read_text()
    body = src[src.index("    def install_all(self, dp)"):src.index("    # -- handlers")]
    assert "OFPMC_DELETE" not in body  # deleting a meter deletes the rules that use it
    assert "send_bundle(dp, bundle.msgs)" in body
    assert "self.add_flow(dp," not in body  # every flow mod goes through the bundle
