"""What the topology fuzz tests share: the files they start from, the example budget, the check.

test_fuzz_loader.py mutates valid files (structure, text, types, encodings);
test_fuzz_limits.py feeds files built to exhaust the loader (depth, aliases,
size). Both run every file through `testbed validate` in-process with
`validate_bytes`, which asserts the property (tests.fuzzing.assert_clean_validate),
and both read their budget from $TESTBED_FUZZ_SCALE through `fuzz`.
"""
from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

from tests.fuzzing import assert_clean_validate, invoke

REPO = Path(__file__).resolve().parents[2]
TOPOLOGIES = sorted((REPO / "topologies").glob("*.yaml"))
MINIMAL = REPO / "topologies" / "minimal.yaml"
MINIMAL_TEXT = MINIMAL.read_text()

_BASE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                 print_blob=True)


def fuzz(examples: int) -> settings:
    """Settings of one property: its example budget (times $TESTBED_FUZZ_SCALE, for long runs off CI),
    no per-example deadline (the alarm catches hangs)."""
    return settings(_BASE, max_examples=max(1, int(examples * SCALE)))

SCALE = float(os.environ.get("TESTBED_FUZZ_SCALE", "1"))


def validate_bytes(workdir: Path, data: bytes, what: str, name: str = "topo.yaml"):
    """Write the bytes as a topology file and validate it; the property holds or the example fails."""
    path = workdir / name
    path.write_bytes(data)
    result, took = invoke(["validate", str(path)], what)
    assert_clean_validate(result, str(path))
    return result, took
