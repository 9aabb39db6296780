"""server: a clinical or office system in the data centre (EMR, PACS, HIS, OA, payment)."""
from testbed.kinds.base import Kind

KIND = Kind("server", "clinical or office system offering services (EMR, PACS, HIS, OA...)", offers_services=True)
