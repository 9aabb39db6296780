"""upf: a 5G user plane function; it terminates GTP-U (N3) from the gNBs and takes N4 from the core."""
from testbed.kinds.base import Kind

KIND = Kind("upf", "5G user plane function (GTP-U endpoint, N3/N6)", offers_services=True,
            implicit_services=("gtpu", "pfcp", "pfcp-hb"), ran_role="upf")
