"""What a run report holds; built by the runner, consumed by the writers and the CLI."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from testbed.checks.result import CheckResult


@dataclass
class RunReport:
    topology: str
    name: str
    run_id: str
    started: float = field(default_factory=time.time)
    platform: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)  # raw workload samples (recompute any verdict)
    error: str | None = None

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failed]

    @property
    def verdict(self) -> str:
        return "FAIL" if self.error or self.failed else "PASS"

    def summary(self) -> dict[str, dict[str, int]]:
        """kind -> {pass, fail, skip} counts."""
        out: dict[str, dict[str, int]] = {}
        for c in self.checks:
            out.setdefault(c.kind, {"pass": 0, "fail": 0, "skip": 0})[c.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict
        d["summary"] = self.summary()
        return d
