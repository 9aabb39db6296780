"""The S-NSSAI value, in a module of its own.

The plan (plan.py) needs pydantic and the topology model; the gNB's and the
core's encoders (ngap.py, nas.py) need only this value. Kept apart, a gNB
process imports no pydantic: about 0.1 s of CPU less per gNB at start-up
(`python -X importtime`), which the reference topology pays 32 times.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Snssai:
    """S-NSSAI: slice/service type and optional 24-bit differentiator (6 hex digits, lower case)."""

    sst: int
    sd: str | None = None

    @property
    def sd_int(self) -> int | None:
        return None if self.sd is None else int(self.sd, 16)

    def __str__(self) -> str:
        return f"{self.sst}" if self.sd is None else f"{self.sst}/{self.sd}"
