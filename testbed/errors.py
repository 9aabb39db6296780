"""One exception base for the whole tool, so the CLI can map failures to exit codes.

Exit codes: 2 for bad input (topology file, CLI arguments), 3 for an unusable
platform (not root, Open vSwitch missing), 1 for everything else that fails a run.
"""
from __future__ import annotations

from dataclasses import dataclass


class TestbedError(Exception):
    """Base of every error the testbed raises on purpose."""

    exit_code = 1
    __test__ = False  # not a pytest test class, despite the name


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class TopologyError(TestbedError):
    """A topology file is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(str(p) for p in problems)
        super().__init__(f"{len(problems)} problem(s) in topology:\n{lines}")


class UsageError(TestbedError):
    """A CLI argument or API call is wrong (unknown node, bad link setting...)."""

    exit_code = 2


class PlatformError(TestbedError):
    """The machine cannot run the testbed (not root, Open vSwitch not running...)."""

    exit_code = 3


class BuildError(TestbedError):
    """Building the emulated network failed; whatever was built has been torn down."""


class RunNotFound(TestbedError):
    """No running testbed matches the request (down/status/exec from another shell)."""

    exit_code = 2
