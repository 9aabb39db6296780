"""`testbed fault inject congestion`: its arguments are checked before any run is looked for (no root)."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from testbed.cli.main import cli


@pytest.fixture(autouse=True)
def empty_state_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TESTBED_STATE_DIR", str(tmp_path))


@pytest.mark.parametrize(("args", "fragment"), [
    (["congestion", "--from", "dr-tablet-02", "--to", "pacs"], "congestion needs --from NODE --to NODE|SERVICE --rate"),
    (["congestion", "a:b", "--from", "x", "--to", "y", "--rate", "1Mbit"], "congestion takes --from, --to and --rate, no TARGET"),
    (["congestion", "--from", "x", "--to", "y", "--rate", "5Gbit"], "at most 1Gbit"),
    (["congestion", "--from", "x", "--to", "y", "--rate", "10Mbit", "--for", "2m"], "--for at most 60s"),
    (["link-down"], "link-down needs a TARGET"),
])
def test_bad_congestion_arguments_are_refused_with_exit_2(args: list[str], fragment: str) -> None:
    r = CliRunner().invoke(cli, ["fault", "inject", *args])
    assert r.exit_code == 2 and fragment in " ".join(r.output.split()), r.output


def test_good_arguments_get_as_far_as_looking_for_a_run() -> None:
    r = CliRunner().invoke(cli, ["fault", "inject", "congestion", "--from", "x", "--to", "y", "--rate", "10Mbit"])
    assert r.exit_code != 0 and "run" in r.output.lower() and "Traceback" not in r.output, r.output
