"""The outcome of one check, in the form every report writer understands."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CheckResult:
    kind: str  # 'reachability', 'probe', 'workload', ...
    name: str  # e.g. 'dr-tablet-01 -> emr'
    status: str  # 'pass' | 'fail' | 'skip'
    detail: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == "fail"
