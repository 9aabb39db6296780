"""vdi: a cloud-desktop host of the data centre's VDI pool (the paper's cloud desktops)."""
from testbed.kinds.base import Kind

KIND = Kind("vdi", "cloud-desktop (VDI) host serving remote desktop sessions", offers_services=True)
