"""gnb: a 5G base station; its user plane (N3) reaches every UPF's GTP-U, outside any slice."""
from testbed.kinds.base import InfraGrant, Kind

KIND = Kind("gnb", "5G base station (gNB) of an alliance unit", infra=(InfraGrant("upf", "gtpu"),),
            ran_role="gnb")
