"""Small programs that run inside the testbed's nodes (capture, listen, send).

They import only the standard library, so starting one per node is cheap
(about 40 ms; Scapy takes 0.5 s per node namespace and 7-14 s in a root
namespace with hundreds of interfaces, because it reads every route and link).
Frames are built by `traffic.packets`, whose output the unit tests check
against Scapy's dissectors.
"""
