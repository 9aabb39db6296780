"""A security tester's probe: TCP SYNs to the target's ssh, RDP and VNC ports with the source
node's own service port as source port (what `nmap --source-port 443` does from a compromised
EMR server). Run from a server against a terminal of its slices, it must be blocked: only the
terminal opens connections to the server, and the server's packets pass only inside them.

The testbed runs it inside the `from` node and tells it, in its environment, whom to probe
(TESTBED_TARGET_IP/_MAC), from where (TESTBED_SRC_*, TESTBED_IFACE) and the token to put in
every frame (TESTBED_TOKEN); the capture at the target decides. See README, "Your own probes".
"""
import json
import os

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.sendrecv import sendp

env = os.environ
me = json.loads(env["TESTBED_HOSTS"])[env["TESTBED_SRC"]]
# The first TCP service this node offers ("emr": "tcp/443"), else 443.
sport = next((int(s.split("/")[1]) for s in me["services"].values() if s.startswith("tcp/")), 443)
for dport in (22, 3389, 5900):
    frame = (Ether(src=env["TESTBED_SRC_MAC"], dst=env["TESTBED_TARGET_MAC"])
             / IP(src=env["TESTBED_SRC_IP"], dst=env["TESTBED_TARGET_IP"])
             / TCP(sport=sport, dport=dport, flags="S")
             / Raw(env["TESTBED_TOKEN"].encode()))
    sendp(frame, iface=env["TESTBED_IFACE"], count=2, inter=0.1, verbose=False)
print(f"sent SYNs from port {sport} to {env['TESTBED_TARGET']} ({env['TESTBED_TARGET_IP']}) ports 22, 3389, 5900")
