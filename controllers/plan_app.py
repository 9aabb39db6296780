"""Shared base of the plan-installing apps: install the testbed's rule plan, keep it in sync.

The testbed computes every rule up front (testbed/slicing/plan.py) and writes
the plan as JSON ($TESTBED_PLAN). An app built on `PlanApp`:

- on switch connect: wipes the switch's flows and meters (a reconnecting switch
  may hold stale ones), sets its fragment mode, installs the meters, a
  priority-0 drop in every table the plan uses, and the plan's rules (actions
  include conntrack: `ct()` as os-ken's NXActionCT), then a barrier. The barrier reply proves
  the rules are in; the switch is then "ready" in $TESTBED_STATUS.
- watches the plan file; when the testbed rewrites it with a higher
  "generation" (`testbed slice grant|revoke`), it installs the difference on
  every connected switch without a restart: new meters, then new and changed
  rules, then deletes rules and meters that are gone (so admitted traffic
  never meets a gap), then a barrier; `applied[dpid]` in the status file tells
  the CLI when the new generation is in.
- never asks for packet-ins; any that arrive are counted in the status file.

Subclasses (one concern each) change what is installed by overriding `rules()`.
This module defines no app itself (os-ken only starts apps defined in the
module it is given), so it is safe to import from app modules.
"""
from __future__ import annotations

import json
import os
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from controllers.compat import (AppBase, CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, hub,
                                ofp_event, ofproto_v1_3, set_ev_cls)
from controllers.status import forget_switch, write_status
from testbed.slicing.reroute import trunk_ends, without_ports

WATCH_INTERVAL_S = 0.2


def rule_key(rule: dict) -> tuple:
    """Identity of a rule on a switch: OpenFlow's own (table, priority, match), the match's fields in
    a canonical order (the same match must never be two keys: `diff` would add it and delete it)."""
    return (rule.get("table", 0), rule["priority"],
            tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in rule["match"].items())))


def _body(rule: dict) -> tuple:
    """What a rule does: compared as values (dicts compare whatever their key order), not serialized."""
    return rule.get("actions"), rule.get("meter"), rule.get("goto"), rule.get("cookie")


def diff(o_rules: list[dict], o_meters: list[dict], n_rules: list[dict], n_meters: list[dict]):
    """(rules added or changed, rules removed, meters added, changed, removed) from one plan to the next."""
    o = {rule_key(r): r for r in o_rules}
    n = {rule_key(r): r for r in n_rules}
    added = [r for k, r in n.items() if k not in o or _body(o[k]) != _body(r)]
    removed = [r for k, r in o.items() if k not in n]
    om = {m["meter_id"]: m for m in o_meters}
    nm = {m["meter_id"]: m for m in n_meters}
    m_add = [m for i, m in nm.items() if i not in om]
    m_mod = [m for i, m in nm.items() if i in om and om[i] != m]
    m_del = [m for i, m in om.items() if i not in nm]
    return added, removed, m_add, m_mod, m_del


# NXM fields whose prerequisite (eth_type) is an OXM field. ct_state, ct_mark, ip_frag are Nicira
# extensions, tcp_flags an ONF one: all work over OpenFlow 1.3. os-ken orders fields by their OXM header,
# which puts Nicira's class (0x0001) before the basic one (0x8000); OVS wants a field's prerequisites first
# and refuses ip_frag before eth_type (OFPBMC_BAD_PREREQ), so ip_frag goes last.
_AFTER_PREREQUISITES = ("ip_frag",)


def ct_action(parser, spec: dict):
    """ct(commit?, zone=Z, table=T, exec(set_field:MARK->ct_mark)?) from a plan action {"ct": spec}.

    Without "table" the packet goes on without its tracked state (NX_CT_RECIRC_NONE);
    the plans always recirculate, so every verdict after a lookup is a rule's own.
    """
    inner = [parser.OFPActionSetField(ct_mark=int(spec["mark"]))] if spec.get("mark") is not None else []
    return parser.NXActionCT(flags=1 if spec.get("commit") else 0,  # NX_CT_F_COMMIT
                             zone_src="", zone_ofs_nbits=int(spec.get("zone", 0)),  # immediate zone
                             recirc_table=int(spec.get("table", 255)), alg=0, actions=inner)


def instructions_of(parser, ofp, rule: dict) -> list:
    """The OpenFlow instructions of a plan rule: its meter, its actions applied, its goto."""
    inst = []
    if rule.get("meter") is not None:
        inst.append(parser.OFPInstructionMeter(int(rule["meter"]), ofp.OFPIT_METER))
    actions = []
    for a in rule.get("actions", []):
        if "output" in a:
            actions.append(parser.OFPActionOutput(int(a["output"])))
        elif "set_field" in a:
            actions.append(parser.OFPActionSetField(**a["set_field"]))
        elif "ct" in a:
            actions.append(ct_action(parser, a["ct"]))
    if actions:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
    if rule.get("goto") is not None:
        inst.append(parser.OFPInstructionGotoTable(int(rule["goto"])))
    return inst


class _Memo:
    """What was built once per process, by key, and at most LIMIT entries (then it starts again): a
    controller following plan changes for days stays bounded."""

    LIMIT = 200_000

    def __init__(self) -> None:
        self._got: dict[tuple, Any] = {}

    def get(self, key: tuple, build: Callable[[], Any]) -> Any:
        got = self._got.get(key)
        if got is None:
            if len(self._got) >= self.LIMIT:
                self._got.clear()
            got = self._got[key] = build()
        return got


class _Built:
    """Matches and instruction lists built once per process, by their plan JSON.

    Why: a switch that (re)connects gets its whole table again (install_all), and building os-ken's
    OFPMatch converts every field through netaddr four times: 7,582 rules of the reference took 1.9 s
    of the controller's CPU, most of it there, while the switches waited for it (a restart during the
    fault drills, on a loaded machine, 6-10 s). Half the matches and all but ~140 instruction lists
    recur across rules and switches. A cached match is written from its serialized bytes (os-ken's
    serialize would convert every field again); instructions are reused as objects (their serialize
    writes the same bytes every time and keeps nothing but their length). Keys are the plan's own
    dicts as repr: equal plans give equal dicts in the same order, and another order only misses.
    """

    def __init__(self) -> None:
        self._matches, self._instructions = _Memo(), _Memo()

    def match(self, parser, ofp, match: dict):
        return self._matches.get((parser, repr(match)), lambda: _wire_match(parser, ofp, match))

    def instructions(self, parser, ofp, rule: dict) -> list:
        key = (parser, repr((rule.get("meter"), rule.get("actions", []), rule.get("goto"))))
        return self._instructions.get(key, lambda: instructions_of(parser, ofp, rule))


_WIRE_CLASSES: dict = {}  # parser module -> its WireMatch class


def _wire_match(parser, ofp, match: dict):
    """A plan match as an OFPMatch of its fields (what logs and str() show) that serializes as bytes
    computed here once: each field converted from its user form once (OFPMatch converts it four
    times; the bytes are the same, tests/controllers check it), sorted by OXM header as OFPMatch
    sorts, the fields that need prerequisites after (_AFTER_PREREQUISITES). A masked field is
    [value, mask] in the plan's JSON, a (value, mask) tuple for os-ken."""
    cls = _WIRE_CLASSES.get(parser)
    if cls is None:
        class WireMatch(parser.OFPMatch):
            def serialize(self, buf, offset):
                if len(buf) < offset:
                    buf += bytearray(offset - len(buf))
                buf[offset:offset + len(self.wire)] = self.wire
                self.length = self.wire_length
                return len(self.wire)

        cls = _WIRE_CLASSES[parser] = WireMatch
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in match.items()}
    late = [(k, kw.pop(k)) for k in _AFTER_PREREQUISITES if k in kw]
    fields = sorted((ofp.oxm_from_user(k, v) for k, v in kw.items()),
                    key=lambda f: f[0][0] if isinstance(f[0], tuple) else f[0])
    fields += [ofp.oxm_from_user(k, v) for k, v in late]
    buf = bytearray(4)
    for n, value, mask in fields:
        ofp.oxm_serialize(n, value, mask, buf, len(buf))
    length = len(buf)
    struct.pack_into("!HH", buf, 0, ofp.OFPMT_OXM, length)
    wired = cls(_ordered_fields=list(kw.items()) + late)
    wired.wire, wired.wire_length = bytes(buf) + bytes(-length % 8), length
    return wired


_BUILT = _Built()


def add_flow(dp, rule: dict) -> None:
    """The one place flows are added (Ryu simple_switch_13 style), from a plan rule."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    dp.send_msg(parser.OFPFlowMod(datapath=dp, table_id=rule.get("table", 0), priority=rule["priority"],
                                  match=_BUILT.match(parser, ofp, rule["match"]),
                                  instructions=_BUILT.instructions(parser, ofp, rule),
                                  cookie=int(rule.get("cookie", 0))))


FRAG_MODES = {"normal": 0, "nx-match": 3}  # OFPC_FRAG_NORMAL; OVS's OFPC_FRAG_NX_MATCH


def set_frag_mode(dp, mode: str) -> None:
    """How the switch presents IP fragments to its tables. 'normal' (OpenFlow's default) zeroes the L4
    ports of every fragment; 'nx-match' keeps a first fragment's ports, so a rule can judge a fragmented
    datagram by its first fragment (ip_frag tells later ones apart)."""
    parser = dp.ofproto_parser
    dp.send_msg(parser.OFPSetConfig(dp, FRAG_MODES[mode], dp.ofproto.OFPCML_MAX))


def meter_mod(dp, command: int, m: dict) -> None:
    """Add or modify one plan meter (a drop band at the slice's rate, in kbit/s)."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    band = parser.OFPMeterBandDrop(rate=int(m["rate_kbps"]), burst_size=int(m.get("burst_kb", 0)))
    flags = ofp.OFPMF_KBPS | (ofp.OFPMF_BURST if m.get("burst_kb") else 0)
    dp.send_msg(parser.OFPMeterMod(datapath=dp, command=command, flags=flags, meter_id=int(m["meter_id"]),
                                   bands=[band]))


class _Collect:
    """Stands in for a datapath to the message builders: keeps what they send (to bundle it)."""

    def __init__(self, dp) -> None:
        self.ofproto, self.ofproto_parser, self.id = dp.ofproto, dp.ofproto_parser, dp.id
        self.dp = dp
        self.msgs: list = []

    def send_msg(self, msg) -> None:
        msg.datapath = self.dp
        self.dp.set_xid(msg)
        self.msgs.append(msg)


def send_together(dp, msgs: list) -> None:
    """Send `msgs` in order as one buffer (os-ken's `Datapath.send`), not a message at a time.

    A switch's table is thousands of messages, and each `send_msg` is a turn through os-ken's send queue
    (16 deep, so the sending greenlet yields every 16) and its own TCP segment (TCP_NODELAY), which the
    switch reads one by one. The bytes are the same; a restarted controller is back sooner and a plan
    change (a grant, a reroute, sessions following their UPF) is in sooner.
    """
    for msg in msgs:
        if msg.xid is None:
            dp.set_xid(msg)
        msg.serialize()
    dp.send(b"".join(bytes(msg.buf) for msg in msgs))


def send_bundle(dp, msgs: list) -> None:
    """Open an atomic, ordered bundle, add `msgs` to it and commit it: the switch applies all or none.
    The whole bundle goes as one buffer (send_together)."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    flags = ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED
    bundle_id = dp.set_xid(parser.OFPBarrierRequest(dp)) & 0x7FFFFFFF  # unique per connection
    out = [parser.ONFBundleCtrlMsg(dp, bundle_id, ofp.ONF_BCT_OPEN_REQUEST, flags, [])]
    for msg in msgs:
        add = parser.ONFBundleAddMsg(dp, bundle_id, flags, msg, [])
        add.xid = msg.xid  # the inner message's xid, as the extension requires
        out.append(add)
    out.append(parser.ONFBundleCtrlMsg(dp, bundle_id, ofp.ONF_BCT_COMMIT_REQUEST, flags, []))
    send_together(dp, out)


class PlanApp(AppBase):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    follow_plan = True  # apply plan changes live

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan_path = os.environ["TESTBED_PLAN"]
        self.status_path = os.environ["TESTBED_STATUS"]
        self.plan = self._read_plan()
        self.down: set[tuple[str, int]] = set()  # trunk ports reported down: forwarding goes around them
        self.live = self.plan  # the plan as installed: self.plan with forwarding around self.down
        self.reroutes = 0
        self.datapaths: dict[str, object] = {}
        self.ready: dict[str, float] = {}
        self.connected: dict[str, float] = {}
        self.applied: dict[str, int] = {}
        self._pending: dict[tuple[str, int], int] = {}  # (dpid, barrier xid) -> generation
        self._tentative: set[tuple[str, int]] = set()  # (dpid, xid): meter attempts one of which is refused
        self.packet_in = 0
        self.errors: list[str] = []
        self._lock = threading.RLock()  # plan + what was sent to the switches change together
        self._plan_stamp = self._stamp()
        self._write_status()
        if self.follow_plan:
            hub.spawn(self._watch_plan)

    # -- what to install (override in subclasses) ---------------------------
    def rules(self, plan: dict, dpid: str) -> tuple[list[dict], list[dict]]:
        """(rules, meters) for one switch."""
        return plan["switches"].get(dpid, []), plan.get("meters", {}).get(dpid, [])

    def tables(self, plan: dict) -> list[int]:
        return plan.get("tables", [0])

    def frag_mode(self, plan: dict) -> str:
        """How switches present IP fragments (see set_frag_mode); the plan says which its rules need."""
        return plan.get("frag_mode", "normal")

    # -- plan file -------------------------------------------------------------
    def _read_plan(self) -> dict:
        with open(self.plan_path) as fh:
            return json.load(fh)

    def _stamp(self):
        try:
            st = os.stat(self.plan_path)
            return (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return None

    def _watch_plan(self) -> None:
        while True:
            hub.sleep(WATCH_INTERVAL_S)
            stamp = self._stamp()
            if stamp is None or stamp == self._plan_stamp:
                continue
            self._plan_stamp = stamp
            try:
                new = self._read_plan()
            except (OSError, ValueError) as exc:  # half-written by a careless writer: next round
                self.logger.warning("plan unreadable (%s); keeping the installed rules", exc)
                self._plan_stamp = None
                continue
            if new.get("generation", 0) <= self.plan.get("generation", 0):
                continue
            self.update_plan(new)

    def update_plan(self, new: dict) -> None:
        """Install the difference between the current plan and `new` on every connected switch."""
        with self._lock:
            old, self.plan = self.live, new
            self.live = without_ports(new, self.down)
            self._apply(old, self.live, new.get("generation", 0))

    def _apply(self, old: dict, new: dict, gen: int) -> None:
        """Send every connected switch the difference between two plans, then a barrier."""
        with self._lock:
            for key, dp in list(self.datapaths.items()):
                added, removed, m_add, m_mod, m_del = self._diff(old, new, key)
                self.logger.info("plan generation %s on %s: +%d -%d rules, meters +%d ~%d -%d", gen, key,
                                 len(added), len(removed), len(m_add), len(m_mod), len(m_del))
                parser, ofp = dp.ofproto_parser, dp.ofproto
                out = _Collect(dp)  # in this order, as one buffer (send_together)
                for m in m_add:
                    self._meter(out, ofp.OFPMC_ADD, m)
                for m in m_mod:
                    self._meter(out, ofp.OFPMC_MODIFY, m)
                for r in added:
                    self.add_flow(out, r)
                for r in removed:
                    out.send_msg(parser.OFPFlowMod(
                        datapath=dp, table_id=r.get("table", 0), command=ofp.OFPFC_DELETE_STRICT,
                        priority=r["priority"], match=_BUILT.match(parser, ofp, r["match"]),
                        out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
                for m in m_del:
                    out.send_msg(parser.OFPMeterMod(datapath=dp, command=ofp.OFPMC_DELETE, meter_id=m["meter_id"]))
                self._barrier(out, key, gen)
                send_together(dp, out.msgs)
            self._write_status()

    def _diff(self, old: dict, new: dict, key: str):
        return diff(*self.rules(old, key), *self.rules(new, key))

    # -- OpenFlow helpers ------------------------------------------------------
    def _write_status(self) -> None:
        with self._lock:
            write_status(self.status_path, type(self).__name__, ready=self.ready, connected=self.connected,
                         packet_in=self.packet_in, generation=self.plan.get("generation", 0),
                         down_ports=sorted(f"{sw}:{port}" for sw, port in self.down), reroutes=self.reroutes,
                         applied=self.applied, errors=self.errors[-20:])

    add_flow = staticmethod(add_flow)
    _meter = staticmethod(meter_mod)

    def _barrier(self, dp, key: str, generation: int) -> None:
        req = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.send_msg(req)  # send_msg assigns the xid
        self._pending[(key, req.xid)] = generation

    def install_all(self, dp) -> None:
        """A switch (re)connected: replace whatever it holds with the current plan, atomically.

        A restarted controller finds its switches still forwarding by the rules they kept (fail
        secure); deleting those first and adding the plan after left a gap in which an admitted
        packet met an empty table (measured: one echo in ~450 lost at the restart). So the
        replacement is one atomic bundle (the ONF extension of OpenFlow 1.3, which Open vSwitch
        implements): delete every rule, add the plan's, committed at once. Meters cannot be in a
        bundle and deleting one deletes the rules that use it, so the plan's meters are set in
        place before it (added, or modified where the switch has one of that id; the attempt that
        does not apply is refused, and that refusal expected) and none is deleted.
        """
        parser, ofp = dp.ofproto_parser, dp.ofproto
        key = f"{dp.id:016x}"
        with self._lock:
            rules, meters = self.rules(self.live, key)
            set_frag_mode(dp, self.frag_mode(self.plan))  # explicit: the bridge keeps a previous app's mode
            attempts = _Collect(dp)
            for m in meters:
                self._meter(attempts, ofp.OFPMC_ADD, m)
                self._meter(attempts, ofp.OFPMC_MODIFY, m)
            for msg in attempts.msgs:
                dp.send_msg(msg)
                self._tentative.add((key, msg.xid))
            bundle = _Collect(dp)
            bundle.send_msg(parser.OFPFlowMod(datapath=dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                              out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
            # Default drop in every table: an explicit priority-0 rule with no instructions (no packet-in).
            for table in self.tables(self.plan):
                self.add_flow(bundle, {"table": table, "priority": 0, "match": {}, "actions": [],
                                       "cookie": self.plan.get("drop_cookie", 0)})
            for r in rules:
                self.add_flow(bundle, r)
            send_bundle(dp, bundle.msgs)
            self.datapaths[key] = dp
            self._barrier(dp, key, self.plan.get("generation", 0))
            dp.send_msg(parser.OFPPortDescStatsRequest(dp, 0))  # trunks already down: see port_desc

    # -- handlers --------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        self.connected[f"{dp.id:016x}"] = time.time()
        self.install_all(dp)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def port_status(self, ev):
        """A trunk port went down (or came back): forwarding recomputed around it, the difference installed."""
        msg = ev.msg
        ofp = msg.datapath.ofproto
        self._port_state(msg.datapath, msg.desc, msg.reason == ofp.OFPPR_DELETE)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def port_desc(self, ev):
        """The ports of a switch that just connected: a trunk already down (this controller restarted
        during a cut) is routed around at once, not only at its next change."""
        for desc in ev.msg.body:
            self._port_state(ev.msg.datapath, desc, False)

    def _port_state(self, dp, desc, deleted: bool) -> None:
        ofp = dp.ofproto
        sw = self.plan.get("switch_names", {}).get(f"{dp.id:016x}")
        port = (sw, int(desc.port_no))
        if sw is None or port not in trunk_ends(self.plan):
            return
        down = deleted or bool(desc.state & ofp.OFPPS_LINK_DOWN) or bool(desc.config & ofp.OFPPC_PORT_DOWN)
        with self._lock:
            if down == (port in self.down):
                return
            (self.down.add if down else self.down.discard)(port)
            old, self.live = self.live, without_ports(self.plan, self.down)
            self.reroutes += 1
            self.logger.info("trunk port %s:%s %s: forwarding recomputed (%d port(s) down)", sw, port[1],
                             "down" if down else "up", len(self.down))
            self._apply(old, self.live, self.plan.get("generation", 0))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev):
        key = f"{ev.msg.datapath.id:016x}"
        gen = self._pending.pop((key, ev.msg.xid), None)
        if gen is None:
            return
        self.ready.setdefault(key, time.time())
        self.applied[key] = max(gen, self.applied.get(key, 0))
        self._write_status()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def error_msg(self, ev):
        msg = ev.msg
        if (f"{msg.datapath.id:016x}", msg.xid) in self._tentative:
            return  # the meter add or modify that did not apply (install_all): expected
        text = f"{msg.datapath.id:016x}: OpenFlow error type={msg.type} code={msg.code}"
        self.logger.error(text)
        self.errors.append(text)
        self._write_status()

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev):
        # Never requested; counted so tests and reports can show there are none.
        self.packet_in += 1
        self._write_status()

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, ev):
        if ev.datapath.id is not None:
            with self._lock:
                forget_switch(ev.datapath, self.datapaths, self.ready, self.connected, self.applied)
            self._write_status()
