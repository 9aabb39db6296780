"""Hostile arguments to `testbed link set`, `node set` and `slice grant|revoke` never crash the CLI.

Property-based (hypothesis). The parsers they call (impair/spec.py parse_assignments,
engine/docker_node.py parse_limits, units.py) either return values inside their documented
range or raise the error the CLI turns into exit 2. The commands themselves run in-process
(CliRunner, under an alarm): a malformed argument is a usage error (exit 2) before any run is
looked at (the state directory is empty, so reaching for a run would say "no testbed is
running" instead); well-formed ones go through to a fake run: a manifest in a private
TESTBED_STATE_DIR owned by this very process, its link backend, container updates,
controller wait and conntrack flush replaced by recorders, so nothing real is touched.
The volume is printed in pytest's summary ("fuzz volume").
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import assert_no_traceback, counted, invoke, report_volume
from testbed import units
from testbed.engine import docker_node as dn
from testbed.engine.rundir import Manifest, NodeRecord, process_start_time
from testbed.errors import UsageError
from testbed.impair import Impairment, apply_assignments, parse_assignments
from testbed.impair.units import parse_rate_bps

REPO = Path(__file__).resolve().parents[2]
MINIMAL = REPO / "topologies" / "minimal.yaml"
SCALE = float(os.environ.get("TESTBED_FUZZ_SCALE", "1"))
_BASE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
                 print_blob=True)


def fuzz(examples: int) -> settings:
    return settings(_BASE, max_examples=max(1, int(examples * SCALE)))


@pytest.fixture(scope="module", autouse=True)
def _volume(request):
    yield
    report_volume(request)


# -- what a hostile user types ---------------------------------------------------------------------
NUMBERS = st.one_of(
    st.integers(-10, 10**4).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "infinity", "1e400", "9" * 400, "1_000", "0x10", "  3 ", "-0",
                     "0.0", ".5", "5.", "1e-9", "١٢", "½", "", " "]),
)
UNITS = st.sampled_from(["", "ms", "s", "us", "µs", "m", "h", "%", "Mbit", "kbit", "Gbit", "bit", "bps", "b", "Mi",
                         "g", "m", "k", "t", "KiB", "gb", "/s", "mbit/s", "%%", "ms ms", "\x00", "\u202e", "ⅿs"])
KEYS = st.sampled_from(["delay", "jitter", "dist", "distribution", "loss", "loss_model", "model", "burst", "dup",
                        "duplicate", "reorder", "gap", "rate", "limit", "link", "up", "DELAY", "loss-model", "cpus",
                        "memory", "CPUS", "Memory", "", "=", "dealy", "x" * 300, "\x1b[31m", "[red]", "\n"])
WORDS = st.sampled_from(["up", "down", "UP", "Down", "normal", "uniform", "pareto", "paretonormal", "random",
                         "gilbert", "none", "unlimited", "off", "true", "false", "yes", "no", "1", "0"])
VALUES = st.one_of(st.builds(lambda n, u: n + u, NUMBERS, UNITS), WORDS, st.text(max_size=20))
TOKENS = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", KEYS, VALUES),
    st.builds(lambda k, v: f"{k} = {v}", KEYS, VALUES),
    WORDS, st.text(max_size=40),
    st.lists(st.builds(lambda k, v: f"{k}={v}", KEYS, VALUES), min_size=2, max_size=4).map(" ".join),
)
ITEMS = st.lists(TOKENS, min_size=0, max_size=5)
NAMES = st.one_of(st.sampled_from(["clinical", "kiosk", "infra", "dr-tablet-01", "kiosk-01", "emr", "core",
                                   "clinic-sw", "nope", "Clinical", "-x", "a" * 63, "a" * 64, "", " ", "x\n",
                                   "a:b", "../x", "[red]x[/]", "\x00", "é"]), st.text(max_size=30))
LINK_REFS = st.one_of(st.sampled_from(["dr-tablet-01:clinic-sw", "clinic-sw:dr-tablet-01", "emr:core",
                                       "a:b", "a:", ":b", ":", "a", "a:b:c", "", "x" * 200 + ":y"]),
                      st.builds(lambda a, b: f"{a}:{b}", NAMES, NAMES), st.text(max_size=30))


# -- the parsers -------------------------------------------------------------------------------------------
@fuzz(400)
@given(ITEMS)
def test_parse_assignments_returns_fields_or_value_error(items):
    with counted("parser inputs"):
        try:
            imp = Impairment().with_updates(**parse_assignments(items))
        except ValueError:
            return
    for name in ("delay_ms", "jitter_ms"):
        assert math.isfinite(getattr(imp, name)) and getattr(imp, name) >= 0
    for name in ("loss_pct", "duplicate_pct", "reorder_pct"):
        assert 0 <= getattr(imp, name) <= 100
    assert imp.rate_bps is None or imp.rate_bps >= 1
    assert Impairment.from_dict(json.loads(json.dumps(imp.to_dict()))) == imp  # what the manifest keeps


@fuzz(300)
@given(ITEMS)
def test_parse_limits_returns_limits_or_usage_error(items):
    with counted("parser inputs"):
        try:
            out = dn.parse_limits(items)
        except UsageError:
            return
    assert out and set(out) <= {"cpus", "memory"}
    if "cpus" in out:
        assert math.isfinite(out["cpus"]) and dn.MIN_CPUS <= out["cpus"] <= dn.MAX_CPUS
    if "memory" in out:
        assert isinstance(out["memory"], int) and dn.MIN_MEMORY <= out["memory"] < 1 << 63


ANY_VALUE = st.one_of(st.builds(lambda n, u: n + u, NUMBERS, UNITS), st.text(max_size=20), st.integers(),
                      st.integers(min_value=10**300, max_value=10**400), st.floats(), st.booleans(), st.none())


@fuzz(300)
@given(ANY_VALUE)
def test_unit_parsers_return_values_in_range_or_value_error(value):
    for parse, ok in ((units.parse_rate, lambda v: isinstance(v, int) and v >= 1),
                      (units.parse_duration_ms, lambda v: math.isfinite(v) and v >= 0),
                      (units.parse_percent, lambda v: 0 <= v <= 100),
                      (units.parse_size, lambda v: isinstance(v, int) and v >= 0),
                      (parse_rate_bps, lambda v: v is None or (isinstance(v, int) and v >= 1))):
        with counted("parser inputs"):
            try:
                got = parse(value)
            except ValueError:
                continue
        assert ok(got), (parse.__name__, value, got)


# -- the commands, with no run at all: parse errors first ---------------------------------------------------
@pytest.fixture(scope="module")
def empty_state(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("empty-state")
    return {"TESTBED_STATE_DIR": str(d)}


def _valid_link_args(ref: str, items: list[str]) -> bool:
    a, sep, b = ref.partition(":")
    if not sep or not a or not b or ":" in b:
        return False
    try:
        return bool(parse_assignments(items)) and Impairment().with_updates(**parse_assignments(items)) is not None
    except ValueError:
        return False


NO_RUN = "no testbed is running"


@fuzz(150)
@given(LINK_REFS, st.lists(TOKENS, min_size=1, max_size=4), st.sampled_from([None, "both", "a_to_b", "x"]))
def test_link_set_arguments_fail_before_any_run(empty_state, ref, items, direction):
    args = ["link", "set", *(["--direction", direction] if direction else []), "--", ref, *items]
    r, _ = invoke(args, "CLI argument sets", env=empty_state)
    assert_no_traceback(r)
    assert r.exit_code == 2, r.output
    if direction == "x":
        return
    if _valid_link_args(ref, items):
        assert NO_RUN in r.output, r.output
    else:
        assert NO_RUN not in r.output, f"parsing came after looking for a run: {r.output}"


@fuzz(100)
@given(NAMES, st.lists(TOKENS, min_size=1, max_size=4))
def test_node_set_arguments_fail_before_any_run(empty_state, node, items):
    r, _ = invoke(["node", "set", "--", node, *items], "CLI argument sets", env=empty_state)
    assert_no_traceback(r)
    assert r.exit_code == 2, r.output
    try:
        dn.parse_limits(items)
        valid = True
    except UsageError:
        valid = False
    assert (NO_RUN in r.output) == valid, r.output


TIMEOUTS = st.one_of(st.sampled_from(["30", "0.5", "0", "-1", "nan", "inf", "-inf", "1e400", "3600", "3601", "x", ""]),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


@fuzz(100)
@given(st.sampled_from(["grant", "revoke"]), NAMES, NAMES, st.one_of(st.none(), TIMEOUTS))
def test_slice_arguments_fail_before_any_run(empty_state, action, slice_name, member, timeout):
    args = ["slice", action, *(["--timeout", timeout] if timeout is not None else []), "--", slice_name, member]
    r, _ = invoke(args, "CLI argument sets", env=empty_state)
    assert_no_traceback(r)
    assert r.exit_code == 2, r.output
    if timeout is not None:
        try:
            t = float(timeout)
            good_timeout = 0 < t <= 3600
        except ValueError:
            good_timeout = False
        if not good_timeout:
            assert NO_RUN not in r.output, r.output
            return
    import re

    from testbed.topology.model import NAME_PATTERN
    names_ok = all(re.fullmatch(NAME_PATTERN, n) for n in (slice_name, member))
    assert (NO_RUN in r.output) == names_ok, r.output


@fuzz(100)
@given(st.lists(st.one_of(TOKENS, st.sampled_from(["--run", "--direction", "--timeout", "--help", "-h", "--",
                                                    "--json", "--debug", "-", "--run=", "--timeout=nan"])),
                max_size=6),
       st.sampled_from([["link", "set"], ["node", "set"], ["slice", "grant"], ["slice", "revoke"], ["link"], ["slice"],
                        ["node"]]))
def test_any_argv_is_usage_or_help(empty_state, argv, verb):
    r, _ = invoke([*verb, *argv], "CLI argument sets", env=empty_state)
    assert_no_traceback(r)
    assert r.exit_code in (0, 2), r.output


# -- the commands against a fake run: well-formed arguments go through ---------------------------------------
RUN_ID = "f00d"


class FakeBackend:
    """Stands for the run's impairment backend: records what it is asked to apply."""

    applied: list = []

    def apply(self, rec, direction, new):
        rec[direction] = new.to_dict()
        FakeBackend.applied.append((direction, new))


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A manifest owned by this process (so it is live) with one changeable link, one docker node,
    and a controller (this process too) whose plan the slice commands rewrite."""
    from testbed.engine.ran import run_controller_plan
    from testbed.openflow.layout import make_layout
    from testbed.ran.network import prepare
    from testbed.topology.loader import load

    state = tmp_path_factory.mktemp("fake-state")
    topo_path = state / "minimal.yaml"
    topo_path.write_text(MINIMAL.read_text())
    mp = pytest.MonkeyPatch()
    mp.setenv("TESTBED_STATE_DIR", str(state))
    start = process_start_time(os.getpid())
    m = Manifest(run_id=RUN_ID, topology=str(topo_path), name="minimal", supervisor_pid=os.getpid(),
                 supervisor_start=start, state="up", datapath="netdev", impairment_backend="fake",
                 controller={"app": "controllers.slicing", "port": 1, "log": str(state / "controller.log")})
    m.nodes["vdi-01"] = NodeRecord(name="vdi-01", internal="tbf00dv0", kind="vdi", runtime="docker",
                                   container="tbf00d-vdi-01")
    m.nodes["emr"] = NodeRecord(name="emr", internal="tbf00dh1", kind="server", runtime="namespace")
    m.pids["controller"] = [os.getpid(), start]
    m.links["dr-tablet-01:clinic-sw"] = {"backend": "fake", "a_to_b": Impairment().to_dict(),
                                         "b_to_a": Impairment(delay_ms=5).to_dict()}
    m.save()
    # the plan as the engine writes it: with the 5G path's nodes and PDU session hosts (a grant re-plans
    # the same way and refuses a plan for other hosts, so a plan without them would read as an edited file)
    topo, ran = prepare(load(topo_path), RUN_ID)
    (m.dir / "plan.json").write_text(json.dumps(run_controller_plan(topo, make_layout(topo, RUN_ID), ran, {}, {})))
    # Nothing real is touched: link backend, docker, the controller's acknowledgement, conntrack.
    import testbed.engine.links as links
    import testbed.engine.slices as slices

    mp.setattr(links, "get_backend", lambda name: FakeBackend())
    mp.setattr(dn, "set_limits", lambda container, cpus=None, memory=None: {"cpus": cpus, "memory": memory})
    mp.setattr(slices, "wait_generation", lambda *a, **kw: 0.0)
    if hasattr(slices, "end_sessions"):
        mp.setattr(slices, "end_sessions", lambda *a, **kw: 0)
    yield {"TESTBED_STATE_DIR": str(state)}
    mp.undo()


@fuzz(120)
@given(st.sampled_from(["dr-tablet-01:clinic-sw", "clinic-sw:dr-tablet-01", "emr:core", "a:b"]),
       st.lists(TOKENS, min_size=1, max_size=3), st.sampled_from(["both", "a_to_b", "b_to_a"]))
def test_link_set_on_a_run(fake_run, ref, items, direction):
    before = Manifest.load(Path(fake_run["TESTBED_STATE_DIR"]) / RUN_ID).links["dr-tablet-01:clinic-sw"]
    r, _ = invoke(["link", "set", "--direction", direction, "--", ref, *items], "CLI runs (fake)", env=fake_run)
    assert_no_traceback(r)
    assert r.exit_code in (0, 2), r.output
    if r.exit_code == 0:
        after = Manifest.load(Path(fake_run["TESTBED_STATE_DIR"]) / RUN_ID).links["dr-tablet-01:clinic-sw"]
        for d in (["a_to_b", "b_to_a"] if direction == "both" else [direction]):
            assert Impairment.from_dict(after[d]) == apply_assignments(Impairment.from_dict(before[d]), items)


@fuzz(80)
@given(st.sampled_from(["vdi-01", "emr", "nope"]), st.lists(TOKENS, min_size=1, max_size=3))
def test_node_set_on_a_run(fake_run, node, items):
    r, _ = invoke(["node", "set", "--", node, *items], "CLI runs (fake)", env=fake_run)
    assert_no_traceback(r)
    assert r.exit_code in (0, 2), r.output
    if r.exit_code == 0:
        assert node == "vdi-01" and "cpus" in r.output


@fuzz(60)
@given(st.sampled_from(["grant", "revoke"]), NAMES, NAMES)
def test_slice_change_on_a_run(fake_run, action, slice_name, member):
    r, _ = invoke(["slice", action, "--timeout", "1", "--", slice_name, member], "CLI runs (fake)", env=fake_run)
    assert_no_traceback(r)
    assert r.exit_code in (0, 2), r.output
    if r.exit_code == 0:  # any host of the file may be admitted to any of its slices
        assert slice_name in ("clinical", "kiosk") and member in ("emr", "pacs", "gnb-clinic", "dr-tablet-01",
                                                                  "kiosk-01"), r.output
