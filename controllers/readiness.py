"""Readiness of a switch under an app that knows nothing of the testbed (a user's own Ryu app).

The testbed waits for every switch to be "ready" in $TESTBED_STATUS before it
checks anything. Its own apps (controllers/plan_app.py) write that file when a
barrier after their rules comes back. A foreign app writes nothing, so the
controller process (testbed/engine/osken_main.py) runs this observer beside it.

Ready here means: the switch connected to the controller and holds at least one
flow entry, seen in a table-stats reply. A working OpenFlow 1.3 app must install
something (a switch in secure fail mode holds no flows and drops everything
without them): a reactive app its table-miss rule, a proactive one its rules.
Polling table stats, instead of sending a barrier when the switch connects,
does not depend on which app's thread handles the connection event first.
A foreign app that itself handles table-stats replies sees these too.

It also counts packet-ins (for the run's report) and OpenFlow errors, and
changes nothing on the switches.
"""
from __future__ import annotations

import os
import threading
import time

from controllers.compat import (AppBase, CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, hub,
                                ofp_event, set_ev_cls)
from controllers.status import forget_switch, write_status

POLL_S = 0.1
POLL_FOR_S = 600.0  # a switch whose app installs nothing stops being polled after this
FLUSH_S = 0.5  # the packet-in count reaches the status file at most this late


class ReadinessObserver(AppBase):
    # No OFP_VERSIONS: the foreign app's own choice of OpenFlow versions stands.

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.status_path = os.environ["TESTBED_STATUS"]
        self.apps = os.environ.get("TESTBED_APP_NAMES", "")
        self.datapaths: dict[str, object] = {}
        self.connected: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.packet_in = 0
        self.errors: list[str] = []
        self._lock = threading.RLock()
        self._dirty = False
        self._write_status()
        hub.spawn(self._flush)

    def _write_status(self) -> None:
        with self._lock:
            write_status(self.status_path, self.apps, observer=type(self).__name__, ready=self.ready,
                         connected=self.connected, packet_in=self.packet_in, errors=self.errors[-20:])

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        key = f"{dp.id:016x}"
        with self._lock:
            self.datapaths[key] = dp
            self.connected[key] = time.time()
            self.ready.pop(key, None)
        self._write_status()
        hub.spawn(self._poll, dp, key)

    def _poll(self, dp, key: str) -> None:
        deadline = time.monotonic() + POLL_FOR_S
        while time.monotonic() < deadline:
            hub.sleep(POLL_S)
            with self._lock:
                if key in self.ready or self.datapaths.get(key) is not dp:
                    return
            try:
                dp.send_msg(dp.ofproto_parser.OFPTableStatsRequest(dp, 0))
            except Exception as exc:  # noqa: BLE001 - a dying connection: the DEAD handler follows
                self.logger.debug("table stats request to %s failed: %s", key, exc)
                return

    @set_ev_cls(ofp_event.EventOFPTableStatsReply, MAIN_DISPATCHER)
    def table_stats(self, ev):
        key = f"{ev.msg.datapath.id:016x}"
        if sum(t.active_count for t in ev.msg.body) <= 0:
            return
        with self._lock:
            if key in self.ready or self.datapaths.get(key) is not ev.msg.datapath:
                return
            self.ready[key] = time.time()
        self._write_status()

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev):
        with self._lock:
            self.packet_in += 1  # written by _flush: a reactive app may see thousands a second
            self._dirty = True
            first = self.packet_in == 1
        if first:  # at once: a short run may end before the next flush, and must not read as never asked
            self._write_status()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def error_msg(self, ev):
        msg = ev.msg
        with self._lock:
            self.errors.append(f"{msg.datapath.id:016x}: OpenFlow error type={msg.type} code={msg.code}")
        self._write_status()

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, ev):
        if ev.datapath.id is None:
            return
        with self._lock:
            forget_switch(ev.datapath, self.datapaths, self.ready, self.connected)
        self._write_status()

    def _flush(self) -> None:
        while True:
            hub.sleep(FLUSH_S)
            with self._lock:
                if self._dirty:
                    self._dirty = False
                    self._write_status()
