"""A reactive L2 learning switch written for the Ryu API, as in Ryu's simple_switch_13.

Plain Ryu code: it imports `ryu.*` only and knows nothing of the testbed, so it
stands for any app a user brings (`controller: {app: path/to/app.py}` in a
topology file, or `--controller-app path/to/app.py`). In the testbed's controller
process `ryu` is os-ken (controllers/ryu_alias.py); where Ryu is installed it runs
on Ryu itself.

Each switch sends every packet it has no rule for to the controller (table-miss
rule, installed when the switch connects). The app learns which port each source
MAC came in on; a packet to a known MAC gets a rule on that switch (so the next
ones stay in the datapath) and is sent out of that port; one to an unknown MAC
is flooded. Flooding has no spanning tree: for loop-free topologies only. It
ignores slices entirely: on a sliced topology the isolation checks will (rightly)
report leaks.
"""
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib.packet import ether_types, ethernet, packet
from ryu.ofproto import ofproto_v1_3

IDLE_TIMEOUT_S = 60  # a learnt rule goes when unused, so a host that moved is learnt again


class L2LearningSwitch(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mac_to_port = {}  # dpid -> {mac: port}
        self.packet_in_count = 0

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev):
        datapath = ev.msg.datapath
        ofproto = datapath.ofproto
        parser = datapath.ofproto_parser
        # Table-miss: everything unmatched goes to the controller, whole (NO_BUFFER): the
        # userspace datapath's buffer ids are not worth depending on.
        match = parser.OFPMatch()
        actions = [parser.OFPActionOutput(ofproto.OFPP_CONTROLLER, ofproto.OFPCML_NO_BUFFER)]
        self.add_flow(datapath, 0, match, actions)

    def add_flow(self, datapath, priority, match, actions, buffer_id=None, idle_timeout=0):
        ofproto = datapath.ofproto
        parser = datapath.ofproto_parser
        inst = [parser.OFPInstructionActions(ofproto.OFPIT_APPLY_ACTIONS, actions)]
        kwargs = dict(datapath=datapath, priority=priority, match=match, instructions=inst,
                      idle_timeout=idle_timeout)
        if buffer_id is not None:
            kwargs["buffer_id"] = buffer_id
        datapath.send_msg(parser.OFPFlowMod(**kwargs))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev):
        msg = ev.msg
        datapath = msg.datapath
        ofproto = datapath.ofproto
        parser = datapath.ofproto_parser
        in_port = msg.match["in_port"]
        self.packet_in_count += 1

        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocols(ethernet.ethernet)[0]
        if eth.ethertype == ether_types.ETH_TYPE_LLDP:
            return  # link discovery chatter: never forwarded
        dst, src = eth.dst, eth.src
        dpid = datapath.id
        table = self.mac_to_port.setdefault(dpid, {})
        table[src] = in_port  # learn, so the reply needs no flood
        out_port = table.get(dst, ofproto.OFPP_FLOOD)
        actions = [parser.OFPActionOutput(out_port)]

        if out_port != ofproto.OFPP_FLOOD:
            self.logger.debug("dpid %016x: %s -> %s learnt on port %s", dpid, src, dst, out_port)
            match = parser.OFPMatch(in_port=in_port, eth_dst=dst, eth_src=src)
            if msg.buffer_id != ofproto.OFP_NO_BUFFER:
                # the switch sends the buffered packet through the new rule itself
                self.add_flow(datapath, 1, match, actions, msg.buffer_id, idle_timeout=IDLE_TIMEOUT_S)
                return
            self.add_flow(datapath, 1, match, actions, idle_timeout=IDLE_TIMEOUT_S)

        data = msg.data if msg.buffer_id == ofproto.OFP_NO_BUFFER else None
        out = parser.OFPPacketOut(datapath=datapath, buffer_id=msg.buffer_id, in_port=in_port,
                                  actions=actions, data=data)
        datapath.send_msg(out)
