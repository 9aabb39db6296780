"""`run`: build a topology, check it, report, tear down — the CI-facing verb.

The teardown happens before the report is written so that the report can carry
the teardown time, and it happens on every path (the Testbed context manager).
An interrupt (Ctrl-C, or the CLI's SIGTERM/SIGHUP, which unwind as KeyboardInterrupt)
stops the run where it is: the workloads' programs are ended at once, teardown runs,
and RunInterrupted carries the report of what ran so far.
"""
from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from testbed import workloads
from testbed.checks.faults import run_drills
from testbed.checks.ran import ran_checks
from testbed.checks.result import CheckResult
from testbed.engine.ran import ran_view
from testbed.engine.teardown import end_node_programs as end_run_programs
from testbed.engine.testbed import Testbed
from testbed.errors import TestbedError, TopologyError
from testbed.events import Emitter, Event, EventSink
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


class RunInterrupted(TestbedError):
    """A run stopped by a signal (`signum`: SIGINT for Ctrl-C). Teardown has run; `report` holds what was
    checked and measured until then, with `error` naming the signal and the stage it stopped. Exit code
    128 + the signal's number, as a shell reports a process a signal ended (130 SIGINT, 143 SIGTERM)."""

    def __init__(self, signum: int, report: RunReport):
        self.signum = signum
        self.report = report
        self.exit_code = 128 + signum
        super().__init__(report.error or f"interrupted by {signal.Signals(signum).name}")


def interrupt_signal(exc: BaseException) -> int | None:
    """The signal an exception stands for: a KeyboardInterrupt is Ctrl-C's SIGINT unless it carries its own
    `signum` (testbed.cli.signals.Interrupted: SIGTERM, SIGHUP); None for anything else."""
    signum = getattr(exc, "signum", None)
    if isinstance(exc, KeyboardInterrupt):
        return signum if isinstance(signum, int) else int(signal.SIGINT)
    return None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def run_checks(tb: Testbed, emit: Emitter, isolation: bool = True, mode: str = "both",
               results: list[CheckResult] | None = None) -> list[CheckResult]:
    """Every stage's checks, appended to `results` (a new list if None) as each stage ends and returned:
    a caller that passes its own list still has the stages that finished when one raises."""
    results = [] if results is None else results
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
    results += run_workloads(tb, emit, sofar=results)
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


STOP_GRACE_S = 5.0  # after an interrupt: how long the workloads get to return once their programs are ended


def run_workloads(tb: Testbed, emit: Emitter, sofar: list[CheckResult] | None = None) -> list[CheckResult]:
    """Every declared workload, concurrently (each type drives its own sources in parallel too);
    each Measurement scored against its entry's SLO. Raw samples go to tb.measurements.

    Each workload runs in a daemon thread that the caller only ever waits for with a bound: when an
    interrupt (or any exception) reaches this thread, the workloads not started yet are not started, the
    programs the running ones started inside the nodes are ended (end_node_programs), their threads get
    STOP_GRACE_S to return what they measured (kept in tb.measurements, their SLO not judged: they were cut
    short), the verdicts of the ones that finished are appended to `sofar`, and the exception goes on."""
    runnable = list(tb.topo.workloads)
    results: list[CheckResult] = []
    if not runnable:
        return results
    emit.stage("workloads", f"{len(runnable)} workloads", total=len(runnable))
    t0 = time.monotonic()
    stop = threading.Event()
    why = ["stopped"]  # why `stop` was set, for the cut-short workloads' checks
    every: list = []  # every Measurement, for the per-slice latency budget verdicts

    def cut_short(w, started: float) -> CheckResult:
        return CheckResult("workload", w.name, "skip",
                           f"{why[0]} after {time.monotonic() - started:.1f} s of its {w.duration / 1000:g} s: "
                           "not judged (what it measured is in the report's measurements)")

    def one(w) -> list[CheckResult]:
        if stop.wait(max(0.0, t0 + w.at / 1000 - time.monotonic())):  # the file's schedule: start at `at`
            return [CheckResult("workload", w.name, "skip", f"not started: {why[0]}")]
        started = time.monotonic()
        try:
            measured = workloads.get(w.type).run(tb, w, workloads.params_of(w), emit.info)
        except Exception as exc:
            if stop.is_set():  # its programs were ended under it (whatever that made it raise)
                return [cut_short(w, started)]
            if isinstance(exc, (TestbedError, OSError, subprocess.SubprocessError)):  # its failure is its verdict
                return [CheckResult("workload", w.name, "fail", f"could not run: {exc}")]
            raise
        for m in measured:
            m.slice = w.slice
        tb.measurements += [m.to_dict() | {"summary": slo.summary(m)} for m in measured]
        if stop.is_set():  # its programs were ended under it: samples, but not a measurement of the SLO
            return [cut_short(w, started)]
        every.extend(measured)
        if not measured:
            return [CheckResult("workload", w.name, "fail", "no source -> target pair to measure")]
        return [c for m in measured for c in slo.verdicts(m, w.slo)]

    finished: queue.SimpleQueue = queue.SimpleQueue()  # (index, verdicts or the exception it raised)

    def thread(i: int, w) -> None:
        try:
            finished.put((i, one(w)))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            finished.put((i, exc))

    threads = [threading.Thread(target=thread, args=(i, w), name=f"workload-{w.name}", daemon=True)
               for i, w in enumerate(runnable)]
    for th in threads:
        th.start()
    got: dict[int, list[CheckResult]] = {}
    try:
        while len(got) < len(runnable):
            try:  # in short waits: a signal the kernel handed to another thread is raised here within one
                i, outcome = finished.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            got[i] = outcome
            emit.progress("workloads", len(got), len(runnable))
    except BaseException as exc:
        signum = interrupt_signal(exc)
        why[0] = f"interrupted by {_signal_name(signum)}" if signum is not None else \
            f"the run stopped ({type(exc).__name__})"
        stop.set()
        try:
            _stop_workloads(tb, runnable, threads, finished, got, why[0])
        finally:
            for i, w in enumerate(runnable):
                results += got.get(i, [CheckResult("workload", w.name, "skip",
                                                   f"{why[0]}: still running {STOP_GRACE_S:g} s after its "
                                                   "programs were ended; not judged")])
            if sofar is not None:
                sofar += results
            tb.timings["workloads_s"] = time.monotonic() - t0
            emit.done("workloads", f"{why[0]}: {sum(c.status != 'skip' for c in results)} workload checks "
                      f"judged, {sum(c.status == 'skip' for c in results)} not", failed=1)
        raise
    for i in range(len(runnable)):
        results += got[i]
    results += slo.slice_verdicts(tb.topo, every)
    tb.timings["workloads_s"] = time.monotonic() - t0  # where the run's time goes, per stage
    emit.done("workloads", f"{sum(c.status == 'pass' for c in results)}/{len(results)} workload checks passed",
              failed=sum(c.status != "pass" for c in results))
    return results


def _stop_workloads(tb: Testbed, runnable: list, threads: list[threading.Thread], finished: queue.SimpleQueue,
                    got: dict[int, list[CheckResult]], why: str) -> None:
    """After `stop` is set: end what the workloads run inside the nodes, then collect (into `got`) what
    their threads return within STOP_GRACE_S. A thread still running after that is a daemon thread, left to
    return when teardown has ended whatever it waits for; nothing waits for it (not even the interpreter's exit)."""
    if any(th.is_alive() for th in threads):
        end_node_programs(tb)
    deadline = time.monotonic() + STOP_GRACE_S
    while len(got) < len(runnable) and (left := deadline - time.monotonic()) > 0:
        try:
            i, outcome = finished.get(timeout=left)
        except queue.Empty:
            break
        got[i] = outcome if not isinstance(outcome, BaseException) else [
            CheckResult("workload", runnable[i].name, "skip", f"{why}; then it raised {type(outcome).__name__}: "
                                                              f"{outcome}; not judged")]


def end_node_programs(tb: Testbed) -> None:
    """End every process inside the run's nodes but the node shells (what teardown does first to the nodes,
    done now): the workloads' programs (ping, iperf3, the traffic agents) and the services they talk to. The
    workload threads waiting for them return with what was measured until now."""
    m = getattr(tb, "manifest", None)
    if m is not None:
        end_run_programs(m)


Checks = Callable[[Testbed, Emitter], list[CheckResult]]


class _Stages:
    """The stage a run is in (the last `stage` event, teardown aside): where an interrupt stopped it."""

    def __init__(self) -> None:
        self.current: str | None = None

    def watch(self, sink: EventSink | None) -> EventSink:
        def watched(ev: Event) -> None:
            if ev.kind == "stage" and ev.stage != "teardown":
                self.current = ev.stage
            if sink is not None:
                sink(ev)
        return watched


def run(tb: Testbed, on_event: EventSink | None = None, isolation: bool = True,
        checks: Checks | None = None, isolation_mode: str = "both") -> RunReport:
    """Up, check, down. Never raises for a failing check; raises TopologyError etc. for bad input.

    `checks` replaces the default set (reachability, declared probes, isolation):
    `testbed probe` passes the isolation probe alone.

    An interrupt (KeyboardInterrupt; the CLI's SIGTERM and SIGHUP are one too, carrying `signum`) stops
    the run where it is; teardown runs as on every path, then RunInterrupted is raised with the report:
    the checks of the stages that finished (the default set's; a `checks` of the caller's own gives none),
    what the workloads measured until then, and `error` "interrupted by SIGINT during workloads".
    """
    stages = _Stages()
    emit = Emitter(stages.watch(on_event))
    tb_emit = getattr(tb, "emit", None)
    if tb_emit is not None:  # the build's stages too, for "interrupted by SIGINT during build (links)"
        tb.emit = Emitter(stages.watch(tb_emit.sink))
    check_workloads(tb.topo)  # bad entries are bad input: nothing is built
    sofar: list[CheckResult] = []  # the default checks append here as each stage ends
    checks = checks or (lambda t, e: run_checks(t, e, isolation, isolation_mode, results=sofar))
    rep = RunReport(topology=tb.source, name=tb.topo.name, run_id="", **describe(tb.topo))
    rep.counts = {"nodes": len(tb.topo.nodes), "hosts": len(tb.topo.hosts), "switches": len(tb.topo.switches),
                  "links": len(tb.topo.links), "slices": len(tb.topo.slices), "sites": len(tb.topo.sites)}
    t0 = time.monotonic()
    interrupted: int | None = None
    try:
        with tb:
            rep.run_id = tb.run_id
            stages.current = None  # built: what comes is the checks' stages
            rep.__dict__.update(describe(tb.topo))  # as built: with the nodes the 5G plan adds
            t_checks = time.monotonic()
            try:
                rep.checks = checks(tb, emit)
            finally:  # an interrupted run's too
                rep.timings["checks_s"] = time.monotonic() - t_checks
            if tb.ran is not None:
                rep.ran = ran_view(tb.ran, tb.manifest.dir, tb.topo.ran.backend)
                rep.checks += ran_checks(rep.ran)
    except KeyboardInterrupt as exc:  # Ctrl-C, or the CLI's SIGTERM/SIGHUP: torn down by now
        interrupted = interrupt_signal(exc)
        built = "up_s" in tb.timings
        where = (stages.current or "checks") if built else "build" + (f" ({stages.current})" if stages.current else "")
        rep.error = f"interrupted by {_signal_name(interrupted)} during {where}"
    except TestbedError as exc:
        rep.error = str(exc)
    finally:
        if tb_emit is not None:
            tb.emit = tb_emit
        rep.checks = rep.checks or list(sofar)  # a run that stopped early keeps the stages that finished
        if tb.manifest is not None:
            rep.run_id = tb.manifest.run_id
            rep.platform = environment.collect(tb.manifest.datapath, tb.manifest.impairment_backend,
                                               tb.manifest.controller.get("app", ""), tb.manifest.tso)
        rep.timings.update(tb.timings)
        rep.measurements = list(tb.measurements)
        rep.verify = dict(getattr(tb, "verification", {}) or {})
        rep.timings["total_s"] = time.monotonic() - t0
        rep.warnings = list(tb.warnings)
    if interrupted is not None:
        raise RunInterrupted(interrupted, rep)
    return rep


def default_report_dir(topo_name: str, run_id: str) -> Path:
    return Path("reports") / f"{topo_name}-{time.strftime('%Y%m%d-%H%M%S')}-{run_id}"
