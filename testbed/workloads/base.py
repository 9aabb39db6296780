"""The contract of a workload type, and what every type returns.

A workload type is one module of this package defining `TYPE`, an object with:
- `name` (the `type:` of a `workloads:` entry) and `summary`;
- `Params`: a strict pydantic model of the keys only this type understands
  (they sit beside the common keys of the entry; an unknown one is an error
  located at its line);
- `agent`: the program in traffic/ that it runs inside nodes (None if it uses
  standard tools only);
- `run(tb, w, params, emit) -> list[Measurement]`: drive the traffic on a
  running testbed (`tb` is testbed.engine.Testbed, passed in: this layer sits
  above the engine) and return raw samples, one Measurement per src -> dst.
Scoring against the entry's `slo:` is common to every type (slo.py), so every
verdict can be recomputed from the raw samples the report keeps.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

from pydantic import BaseModel, ConfigDict

# Sample series a type may fill; slo.py knows which SLO field reads which series.
LATENCY_MS = "latency_ms"  # one value per operation: RTT, request -> response, input -> update
THROUGHPUT_BPS = "throughput_bps"  # one value per interval
COMPLETION_MS = "completion_ms"  # one value per transfer / transaction


class NoParams(BaseModel):
    """A type without keys of its own: any extra key in the entry is an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Measurement:
    """What one source measured against one target: raw samples plus counts."""

    workload: str
    type: str
    src: str
    dst: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    sent: int = 0  # operations / packets attempted
    received: int = 0  # ... that completed
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)  # e.g. interval_s: the spacing of a throughput series
    slice: str | None = None  # the slice the entry runs in (set by the runner from the entry)

    @property
    def loss_pct(self) -> float | None:
        return None if not self.sent else 100.0 * (self.sent - self.received) / self.sent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WorkloadType(Protocol):
    name: str
    summary: str
    Params: type[BaseModel]
    agent: str | None

    def run(self, tb: Any, w: Any, params: BaseModel, emit: Callable[[str], None]) -> list[Measurement]:
        ...
