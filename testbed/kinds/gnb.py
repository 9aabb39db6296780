"""gnb: a 5G base station; its UEs' radio link (RLS) ends here, and it terminates GTP-U downlink (N3)."""
from testbed.kinds.base import InfraGrant, Kind

KIND = Kind("gnb", "5G base station (gNB) of an alliance unit", implicit_services=("rls", "gtpu"),
            infra=(InfraGrant("upf", "gtpu"),), ran_role="gnb")
