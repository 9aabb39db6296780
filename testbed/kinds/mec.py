"""mec: a multi-access edge computing host (edge cache, local breakout services)."""
from testbed.kinds.base import Kind

KIND = Kind("mec", "MEC host: services at the network edge (imaging cache...)", offers_services=True)
