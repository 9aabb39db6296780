"""The 5G part of a topology as pure data and encodings: the plan (who registers where, with
which PDU sessions, through which UPF), the 3GPP NAS/NGAP messages the emulation exchanges
(pycrate), and the UERANSIM / Open5GS configurations of the same plan.

Layer: pure rules (beside testbed.slicing). It reads the topology model, node kinds and the
slice policy; the engine and everything above use it, never the other way round.
"""
from testbed.ran.plan import RanPlan, RanPlanError, ran_plan

__all__ = ["RanPlan", "RanPlanError", "ran_plan"]
