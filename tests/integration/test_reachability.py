"""The reachability check on a real network: a granted pair is reached, a refused one is reported, and a source
with more targets than it pings at once gets every one of them (testbed.workloads.reachability)."""
from __future__ import annotations

import pytest

from tests.helpers import MINIMAL, built

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    text = MINIMAL.read_text().replace("\nran:\n", "\nran:\n  backend: \"off\"\n", 1)
    yield from built(text, "minimal-plain.yaml", tmp_path_factory)


def test_granted_pairs_pass_refused_ones_fail_and_every_target_of_a_busy_source_is_answered(tb):
    from testbed.workloads.reachability import TARGETS_AT_ONCE, check_reachability

    granted = [("dr-tablet-01", "emr"), ("dr-tablet-01", "pacs")]
    refused = [("kiosk-01", "pacs")]  # the kiosk slice grants the EMR only
    # one source with more targets than it pings at once: the same two servers again and again
    busy = [("dr-tablet-01", t) for t in ["emr", "pacs"] * (TARGETS_AT_ONCE // 2 + 2)]
    results = {c.name: c for c in check_reachability(tb, granted + refused + busy)}
    assert {n: c.status for n, c in results.items()} == {
        "dr-tablet-01 -> emr": "pass", "dr-tablet-01 -> pacs": "pass", "kiosk-01 -> pacs": "fail"}
    assert results["kiosk-01 -> pacs"].detail == "no reply"
    assert results["dr-tablet-01 -> emr"].metrics["rtt_avg_ms"] > 0
