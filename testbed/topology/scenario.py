"""What a topology file runs against its network and judges: workloads and their SLOs, probes, faults.

The traffic half of the file format, kept apart from the network half (`model.py`,
which imports these back so `Topology` can hold them and existing importers keep
working). The same strictness applies: unknown keys are errors, except a
workload's own keys, which its type's module checks (testbed.workloads).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema

from testbed.topology.fields import Duration, Name, Percent, Rate, Strict

class Slo(Strict):
    """What a workload must achieve; each field set is one verdict (testbed.workloads.slo)."""

    latency_p50: Duration | None = Field(None, description="Median latency (RTT for ping-like workloads).")
    latency_p95: Duration | None = None
    latency_p99: Duration | None = None
    latency_max: Duration | None = None
    jitter: Duration | None = Field(None, description="Mean difference between consecutive latencies (RFC 3550 style).")
    throughput_min: Rate | None = None
    loss_max: Percent | None = None
    completion_time: Duration | None = None
    errors_max: int | None = Field(None, ge=0, description="Failed operations allowed.")


class Workload(Strict):
    """Traffic to run and judge. `type` names a module of testbed.workloads, which also checks the
    type's own keys (extra keys here); the file format's common keys are these."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: Name
    type: Name = Field(description="Workload type (testbed.workloads registry), e.g. ping.")
    src: list[str] = Field(alias="from", min_length=1)
    dst: str = Field(alias="to", description="Node name or service name.")
    slice: Name | None = None
    at: Duration = Field(0.0, description="Start this long after the workloads stage begins (e.g. '2s').")
    duration: Duration = 5000.0
    rate: Rate | None = None
    slo: Slo = Slo()

    @property
    def params(self) -> dict[str, Any]:
        """The keys only this workload's type understands (validated by the type's module)."""
        return dict(self.model_extra or {})


EXPECT_WORDS = {"arrive": "pass", "blocked": "fail"}  # a script probe's words for pass / fail


def _expect(value: Any) -> Any:
    if value in EXPECT_WORDS:
        return EXPECT_WORDS[value]
    if value not in ("pass", "fail"):
        raise ValueError(f"Input should be one of: pass, fail, arrive, blocked (got {value!r})")
    return value


Expect = Annotated[
    Literal["pass", "fail"],
    BeforeValidator(_expect),
    WithJsonSchema({"type": "string", "enum": ["pass", "fail", "arrive", "blocked"],
                    "description": "pass (or arrive): must get through; fail (or blocked): must not."}),
]


class Probe(Strict):
    """A declared probe. `script`: a tester's own Python (Scapy) file, run in each `from` node
    against each `to` node; a frame carrying the probe's token captured at the target = arrived."""

    name: Name
    type: Literal["reachability", "isolation", "attack", "script"] = "reachability"
    src: list[str] = Field(alias="from", min_length=1)
    dst: list[str] = Field(alias="to", min_length=1)
    expect: Expect = "pass"
    script: str | None = Field(None, description="type script: the Python file to run (with Scapy), relative "
                                                 "to this topology file; it gets the target's addresses and a "
                                                 "token to put in every frame it sends (env TESTBED_*).")


FAULT_TYPES = ("link-down", "node-down", "controller-kill", "impair", "congestion")
PAPER_VISITS_PER_DAY = 50  # the paper's Table 1: outpatient visits per doctor workstation per clinic day
PAPER_CLINIC_DAY_MS = 7 * 3600e3  # ... over a 7-hour clinic day


class Fault(Strict):
    name: Name
    type: Literal[FAULT_TYPES]  # type: ignore[valid-type]
    target: str | None = None
    at: Duration = Field(0.0, description="When it strikes, counted from the start of the fault drills (they run "
                                          "after the workloads, on one clock).")
    duration: Duration | None = Field(None, description="How long until it is restored (default 5s).")
    set: list[str] = Field(default_factory=list, description="type impair: the link's settings while it lasts, "
                                                             "as `testbed link set` takes them (delay=50ms, loss=2%).")
    desktop: Literal["traditional", "cloud"] | None = Field(
        None, description="An arm of the desktop-failure comparison (the paper's Table 1), a node-down: "
                          "traditional - the target is a clinic's own workstation, down until repaired (`repair`); "
                          "cloud - the target is a cloud-desktop host, whose sessions move to a spare (measured).")
    repair: Duration | None = Field(None, description="desktop: traditional: how long a real repair takes (the paper: "
                                                      "4h). The drill holds the node down for `duration`; the patients "
                                                      "queued are estimated from this.")
    visits_per_day: int = Field(PAPER_VISITS_PER_DAY, ge=1, le=1000,
                                description="desktop drills: outpatient visits per workstation per clinic day.")
    clinic_day: Duration = Field(PAPER_CLINIC_DAY_MS, gt=0, le=24 * 3600e3,
                                 description="desktop drills: the clinic day those visits spread over (default 7h).")
    src: str | None = Field(None, alias="from", description="congestion: the node sending the cross-traffic "
                                                           "(iperf3 TCP, so it must be a slice member granted iperf).")
    dst: str | None = Field(None, alias="to", description="congestion: the node, or service, offering iperf it goes to.")
    rate: Rate | None = Field(None, description="congestion: the cross-traffic's rate (iperf3 -b), at most 1Gbit.")

    def carrier_refs(self, links: list[Any]) -> list[str]:
        """The links ("A:B") whose carrier this fault cuts: a link-down's target, every link of a
        node-down's node (`links`: the topology's); none for the other types."""
        if self.type == "link-down" and self.target:
            return [self.target]
        if self.type == "node-down" and self.target:
            return [f"{a}:{b}" for a, b in (ln.endpoints for ln in links) if self.target in (a, b)]
        return []
