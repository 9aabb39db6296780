"""`testbed slice grant` for a 5G UE: only a slice it has a PDU session in (engine.slices._check_ue_has_session).

A tester granted a UE a slice it was never a member of: the command said the rules were in, but the UE had no
session in that slice, so nothing could reach the slice's services, and nothing said so."""
from __future__ import annotations

import pytest

from testbed.engine.slices import _check_ue_has_session
from testbed.errors import UsageError


def test_a_grant_of_a_slice_the_ue_has_no_session_in_is_refused_with_its_sessions_named(reference_plan):
    ue = next(s for s in reference_plan.subscribers if len(s.sessions) == 1)
    have = ue.sessions[0].slice
    other = next(s.name for s in reference_plan.slices if s.name != have)
    with pytest.raises(UsageError) as exc:
        _check_ue_has_session(reference_plan, other, ue.name, "alliance.yaml")
    msg = str(exc.value)
    assert f"no PDU session in slice {other!r}" in msg and f"{have} (uesimtun0)" in msg and "alliance.yaml" in msg


def test_a_grant_back_of_a_slice_with_a_session_and_a_grant_to_a_wired_host_are_allowed(reference_plan):
    ue = reference_plan.subscribers[0]
    _check_ue_has_session(reference_plan, ue.sessions[0].slice, ue.name, "alliance.yaml")  # revoke, then grant back
    _check_ue_has_session(reference_plan, "imaging", "vdi-01", "alliance.yaml")  # not a UE: its own address
    _check_ue_has_session(None, "imaging", ue.name, "alliance.yaml")  # no 5G path: UEs are plain hosts
