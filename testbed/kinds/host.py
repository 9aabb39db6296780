"""host: any other machine (a PC on a campus LAN, a test host); may offer services."""
from testbed.kinds.base import Kind

KIND = Kind("host", "any other machine; may offer services", offers_services=True)
