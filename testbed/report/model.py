"""What a run report holds; built by the runner, consumed by the writers and the CLI.

`report.json` is this structure (schemas/report.schema.json documents it).
`schema_version` counts its incompatible-for-readers changes; keys are only ever
added, so version 1 files (no network, slices or environment) still load and
render, with those sections said to be missing rather than invented.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from testbed.checks.result import CheckResult
from testbed.errors import UsageError

# 1: the original report (checks, measurements, platform: datapath/impairments/ovs/controller).
# 2: + schema_version, network (sites, nodes, links, workloads), slices, platform environment details.
# 3: + ran (the 5G path: UEs, sessions, TEIDs, UPFs, registration and session set-up times).
# 4: + verify (the exhaustive proof over the installed flow tables, its findings and their replay).
SCHEMA_VERSION = 4


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
    # What was built, so a reader (and `testbed report`) can group verdicts by slice and draw the
    # network without the topology file: testbed.report.network.describe().
    network: dict[str, Any] = field(default_factory=dict)
    slices: list[dict[str, Any]] = field(default_factory=list)
    ran: dict[str, Any] = field(default_factory=dict)  # testbed.engine.ran.ran_view; empty without a 5G path
    verify: dict[str, Any] = field(default_factory=dict)  # testbed.checks.verify.Verification.summary(); empty if not run

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
        d = {"schema_version": SCHEMA_VERSION, **asdict(self)}
        d["verdict"] = self.verdict
        d["summary"] = self.summary()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunReport":
        """A report read back from report.json (any version up to ours); derived keys are recomputed.

        A newer version is refused: it may mean something this code would render wrongly. An older
        one loads with the sections it lacks left empty (written back out, it is a valid current one).
        """
        version = int(d.get("schema_version", 1))
        if version > SCHEMA_VERSION:
            raise UsageError(f"report schema version {version} is newer than this testbed understands "
                             f"({SCHEMA_VERSION}); upgrade the testbed")
        for key in ("topology", "name", "run_id"):
            if key not in d:
                raise UsageError(f"not a testbed report: no {key!r} key")
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known and k != "checks"}
        kw["checks"] = [CheckResult(**{k: c[k] for k in ("kind", "name", "status", "detail", "metrics", "seconds")
                                       if k in c}) for c in d.get("checks", [])]
        return cls(**kw)
