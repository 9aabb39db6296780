"""core: the 5G core's control plane (AMF and SMF): N2 from the gNBs, N4 to the UPFs.

A file rarely lists it: the RAN plan adds one beside the data centre when the
file has none (testbed.ran.network)."""
from testbed.kinds.base import Kind

KIND = Kind("core", "5G core control plane: AMF and SMF (N2 from gNBs, N4 to UPFs)",
            implicit_services=("ngap",), ran_role="core")
