"""One bad-topology case: (id, YAML text, field, line, message fragment).

Every YAML text starts at line 1 (dedented, no leading blank line), so the line
numbers in the expectations can be checked by counting.
"""
from __future__ import annotations

import pytest


def case(id_: str, text: str, field: str, line: int | None, fragment: str):
    return pytest.param(text, field, line, fragment, id=id_)
