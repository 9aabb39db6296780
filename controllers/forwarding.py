"""Proactive forwarding: install the testbed's precomputed plan on every switch.

The plan (JSON, path in $TESTBED_PLAN) lists each switch's rules by datapath id.
On connect we wipe the switch's table, install a priority-0 drop and the plan,
then send a barrier; the barrier reply proves the rules are in, and we record the
switch as ready in $TESTBED_STATUS so the testbed knows when the network is up.
No packet-ins are requested: anything the plan does not allow is dropped.
"""
from __future__ import annotations

import json
import os
import threading
import time

from controllers.compat import (AppBase, CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                ofp_event, ofproto_v1_3, set_ev_cls)


class PlanForwarding(AppBase):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan_path = os.environ["TESTBED_PLAN"]
        self.status_path = os.environ["TESTBED_STATUS"]
        with open(self.plan_path) as fh:
            self.plan: dict[str, list[dict]] = json.load(fh)["switches"]
        self.ready: dict[str, float] = {}
        self.connected: dict[str, float] = {}
        self.packet_in = 0
        self._lock = threading.Lock()
        self._write_status()

    # -- helpers -------------------------------------------------------------
    def _write_status(self) -> None:
        with self._lock:
            data = {"pid": os.getpid(), "ready": self.ready, "connected": self.connected,
                    "packet_in": self.packet_in, "time": time.time()}
            tmp = self.status_path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, self.status_path)

    @staticmethod
    def add_flow(dp, priority: int, match, actions, cookie: int = 0) -> None:
        """The one place flows are added (Ryu simple_switch_13 style)."""
        parser, ofp = dp.ofproto_parser, dp.ofproto
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else []
        dp.send_msg(parser.OFPFlowMod(datapath=dp, priority=priority, match=match,
                                      instructions=inst, cookie=cookie))

    def _actions(self, dp, spec: list[dict]):
        parser = dp.ofproto_parser
        out = []
        for a in spec:
            if "output" in a:
                out.append(parser.OFPActionOutput(int(a["output"])))
            elif "set_field" in a:
                out.append(parser.OFPActionSetField(**a["set_field"]))
        return out

    # -- handlers ------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        parser, ofp = dp.ofproto_parser, dp.ofproto
        key = f"{dp.id:016x}"
        self.connected[key] = time.time()
        # Start from a known state: a reconnecting switch may hold stale rules.
        dp.send_msg(parser.OFPFlowMod(datapath=dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                      out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
        # Default drop: an explicit priority-0 rule with no actions (no packet-in).
        self.add_flow(dp, 0, parser.OFPMatch(), [])
        for f in self.plan.get(key, []):
            self.add_flow(dp, f["priority"], parser.OFPMatch(**f["match"]), self._actions(dp, f["actions"]))
        dp.send_msg(parser.OFPBarrierRequest(dp))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev):
        self.ready[f"{ev.msg.datapath.id:016x}"] = time.time()
        self._write_status()

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev):
        # Should never happen with a complete plan; counted so tests can assert it.
        self.packet_in += 1
        self._write_status()

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, ev):
        if ev.datapath.id is not None:
            key = f"{ev.datapath.id:016x}"
            self.ready.pop(key, None)
            self.connected.pop(key, None)
            self._write_status()
