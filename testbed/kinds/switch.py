"""switch: an Open vSwitch bridge under the run's OpenFlow 1.3 controller (fail-secure)."""
from testbed.kinds.base import Kind

KIND = Kind("switch", "OpenFlow switch (OVS bridge) of the campus, bearer or core network", switch=True)
