"""`run`: build a topology, check it, report, tear down — the CI-facing verb.

The teardown happens before the report is written so that the report can carry
the teardown time, and it happens on every path (the Testbed context manager).
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from concurrent.futures import ThreadPoolExecutor

from testbed import workloads
from testbed.checks.faults import run_drills
from testbed.checks.ran import ran_checks
from testbed.checks.result import CheckResult
from testbed.engine.ran import ran_view
from testbed.engine.testbed import Testbed
from testbed.errors import TestbedError, TopologyError
from testbed.events import Emitter, EventSink
from testbed.ran import network as ran_network
from testbed.ran.plan import ran_plan
from testbed.report import environment
from testbed.report.model import RunReport
from testbed.report.network import describe
from testbed.topology import loader
from testbed.topology.model import Topology
from testbed.workloads import slo
from testbed.workloads.reachability import check_reachability, intended_pairs
from testbed.workloads.targets import resolve


def load(path: str | Path) -> Topology:
    """A topology file checked by every layer that owns a part of it: the model and graph
    (testbed.topology), then the workload entries (testbed.workloads). TopologyError lists all."""
    topo = loader.load(path)
    check_workloads(topo)
    check_ran(topo)
    return topo


def check_ran(topo: Topology) -> None:
    """The file's 5G part must plan (every UE has a gNB, pools fit, UPFs serve every slice): RanPlanError."""
    if ran_network.enabled(topo):
        ran_plan(topo)


def check_workloads(topo: Topology) -> None:
    if problems := workloads.validate(topo):
        raise TopologyError(loader.in_file_order(problems))


def probe_pairs(topo: Topology) -> list[tuple[str, str, str, str]]:
    """(probe name, src, dst, expect) for reachability probes declared in the file."""
    out = []
    for pr in topo.probes:
        if pr.type != "reachability":
            continue
        for s in pr.src:
            for d in pr.dst:
                for t in resolve(topo, d):
                    out.append((pr.name, s, t, pr.expect))
    return out


ISOLATION_MODES = ("both", "probe", "verify")  # packets, the exhaustive proof, or both (testbed run --isolation)


def run_checks(tb: Testbed, emit: Emitter, isolation: bool = True, mode: str = "both") -> list[CheckResult]:
    results: list[CheckResult] = []
    pairs = intended_pairs(tb.topo, tb.ran)
    emit.stage("reachability", f"pinging {len(pairs)} intended pairs")
    with timed(tb, "reachability_s"):
        results += check_reachability(tb, pairs)
    emit.done("reachability", f"{sum(r.status == 'pass' for r in results)}/{len(pairs)} reachable",
              failed=sum(r.status != "pass" for r in results))
    probes = probe_pairs(tb.topo)
    if probes:
        emit.stage("probes", f"{len(probes)} reachability probes")
        got = {r.name: r for r in check_reachability(tb, [(s, d) for _, s, d, _ in probes])}
        for name, s, d, expect in probes:
            r = got[f"{s} -> {d}"]
            reached = r.status == "pass"
            ok = reached == (expect == "pass")
            results.append(CheckResult("probe", f"{name}: {s} -> {d} (expect {expect})", "pass" if ok else "fail",
                                       ("reached" if reached else "blocked") + ("" if ok else
                                       (" - LEAK" if reached else " - FALSE BLOCK")), r.metrics, r.seconds))
        emit.done("probes")
    # Isolation: the full should-pass/must-fail matrix and the attack probes, from the slice policy.
    # `mode` verify: the proof alone, no capture agent per host (what scales to a thousand nodes)
    if isolation and mode != "verify" and (tb.topo.slices or any(pr.type != "reachability" for pr in tb.topo.probes)):
        from testbed.probe.run import run_probes

        with timed(tb, "probe_s"):
            results += run_probes(tb, on_event=emit.sink)  # the file's script probes too
    elif any(pr.type == "script" for pr in tb.topo.probes):
        from testbed.probe.script import run_script_probes

        results += run_script_probes(tb, on_event=emit.sink)
    if isolation and mode != "probe" and tb.topo.slices:
        results += run_verify(tb, emit)
    results += run_workloads(tb, emit)
    with timed(tb, "drills_s"):
        results += run_drills(tb, emit)  # the file's faults, after the workloads: recovery measured
    return results


@contextmanager
def timed(tb: Testbed, key: str) -> Iterator[None]:
    """Record how long a stage took in tb.timings[key]: the report says where a run's time goes."""
    t0 = time.monotonic()
    try:
        yield
    finally:
        tb.timings[key] = time.monotonic() - t0


def run_verify(tb: Testbed, emit: Emitter) -> list[CheckResult]:
    """The exhaustive proof over the tables the switches hold, next to the probe's packets (its
    findings replayed on the wire); a proof that cannot run is a failed check, never a skip."""
    from testbed.checks.verify import results as verify_results, verify

    t0 = time.monotonic()
    try:
        v = verify(tb, emit.sink)
    except TestbedError as exc:
        return [CheckResult("verify", "exhaustive isolation proof", "fail", f"could not verify: {exc}")]
    finally:
        tb.timings["verify_s"] = time.monotonic() - t0
    tb.verification = v.summary()
    return verify_results(v)


def run_workloads(tb: Testbed, emit: Emitter) -> list[CheckResult]:
    """Every declared workload, concurrently (each type drives its own sources in parallel too);
    each Measurement scored against its entry's SLO. Raw samples go to tb.measurements."""
    runnable = list(tb.topo.workloads)
    results: list[CheckResult] = []
    if not runnable:
        return results
    emit.stage("workloads", f"{len(runnable)} workloads", total=len(runnable))
    t0 = time.monotonic()

    every: list = []  # every Measurement, for the per-slice latency budget verdicts

    def one(w) -> list[CheckResult]:
        time.sleep(max(0.0, t0 + w.at / 1000 - time.monotonic()))  # the file's schedule: start at `at`
        try:
            measured = workloads.get(w.type).run(tb, w, workloads.params_of(w), emit.info)
        except (TestbedError, OSError, subprocess.SubprocessError) as exc:  # a workload's failure is its verdict
            return [CheckResult("workload", w.name, "fail", f"could not run: {exc}")]
        for m in measured:
            m.slice = w.slice
        every.extend(measured)
        tb.measurements += [m.to_dict() | {"summary": slo.summary(m)} for m in measured]
        if not measured:
            return [CheckResult("workload", w.name, "fail", "no source -> target pair to measure")]
        return [c for m in measured for c in slo.verdicts(m, w.slo)]

    with ThreadPoolExecutor(max_workers=len(runnable)) as pool:
        for i, got in enumerate(pool.map(one, runnable)):
            results += got
            emit.progress("workloads", i + 1, len(runnable))
    results += slo.slice_verdicts(tb.topo, every)
    tb.timings["workloads_s"] = time.monotonic() - t0  # where the run's time goes, per stage
    emit.done("workloads", f"{sum(c.status == 'pass' for c in results)}/{len(results)} workload checks passed",
              failed=sum(c.status != "pass" for c in results))
    return results


Checks = Callable[[Testbed, Emitter], list[CheckResult]]


def run(tb: Testbed, on_event: EventSink | None = None, isolation: bool = True,
        checks: Checks | None = None, isolation_mode: str = "both") -> RunReport:
    """Up, check, down. Never raises for a failing check; raises TopologyError etc. for bad input.

    `checks` replaces the default set (reachability, declared probes, isolation):
    `testbed probe` passes the isolation probe alone.
    """
    emit = Emitter(on_event)
    check_workloads(tb.topo)  # bad entries are bad input: nothing is built
    checks = checks or (lambda t, e: run_checks(t, e, isolation, isolation_mode))
    rep = RunReport(topology=tb.source, name=tb.topo.name, run_id="", **describe(tb.topo))
    rep.counts = {"nodes": len(tb.topo.nodes), "hosts": len(tb.topo.hosts), "switches": len(tb.topo.switches),
                  "links": len(tb.topo.links), "slices": len(tb.topo.slices), "sites": len(tb.topo.sites)}
    t0 = time.monotonic()
    try:
        with tb:
            rep.run_id = tb.run_id
            rep.__dict__.update(describe(tb.topo))  # as built: with the nodes the 5G plan adds
            t_checks = time.monotonic()
            rep.checks = checks(tb, emit)
            rep.timings["checks_s"] = time.monotonic() - t_checks
            if tb.ran is not None:
                rep.ran = ran_view(tb.ran, tb.manifest.dir, tb.topo.ran.backend)
                rep.checks += ran_checks(rep.ran)
    except TestbedError as exc:
        rep.error = str(exc)
    finally:
        if tb.manifest is not None:
            rep.run_id = tb.manifest.run_id
            rep.platform = environment.collect(tb.manifest.datapath, tb.manifest.impairment_backend,
                                               tb.manifest.controller.get("app", ""), tb.manifest.tso)
        rep.timings.update(tb.timings)
        rep.measurements = list(tb.measurements)
        rep.verify = dict(getattr(tb, "verification", {}) or {})
        rep.timings["total_s"] = time.monotonic() - t0
        rep.warnings = list(tb.warnings)
    return rep


def default_report_dir(topo_name: str, run_id: str) -> Path:
    return Path("reports") / f"{topo_name}-{time.strftime('%Y%m%d-%H%M%S')}-{run_id}"
