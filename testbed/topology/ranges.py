"""The text half of site templates: ranges (`chc-{01..14}`) and placeholders (`{site}`, `{n+1}`).

Kept apart from the tree walk (expand.py) so the two small languages a topology file
gains are defined, bounded and tested in one place:

- a **range** `{A..B}` or `{A..B..STEP}` (bash's brace sequence, upward only) stands for
  one text per number, `chc-{01..14}` -> chc-01 ... chc-14; written with a leading zero
  (`01`), every number is padded to the widest end. At most one range per text, and at
  most `MAX_INSTANCES` numbers: a file asking for a million sites is refused, not expanded.
- a **placeholder** `{name}`, `{name+K}` or `{name-K}` inside a template's strings is the
  instance's value of a variable (K shifts a number, keeping its width: `{n+1}` of `09` is
  `10`, of `016` is `017`); `{{` and `}}` are literal braces. Any other use of braces is an
  error, so a typo never reaches a node name.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

MAX_INSTANCES = 1000  # instances of templates in one file (and numbers in one range)
MAX_DIGITS = 6  # range ends and shifts: no arithmetic on numbers nobody writes by hand

_RANGE = re.compile(r"\{(\d{1,%d})\.\.(\d{1,%d})(?:\.\.(\d{1,%d}))?\}" % (MAX_DIGITS, MAX_DIGITS, MAX_DIGITS))
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]{0,31})(?:([+-])(\d{1,%d}))?\}" % MAX_DIGITS)
VAR_NAME = r"^[a-z_][a-z0-9_]{0,31}$"


class TextError(ValueError):
    """A range or placeholder that cannot be expanded; the message says why, for the user."""


def has_range(text: str) -> bool:
    return bool(_RANGE.search(text))


def expand_range(text: str) -> list[tuple[str, str | None]]:
    """[(text with the range replaced, the number as written)] for each number; a text without
    a range is itself with no number. TextError for a second range, a downward one, a zero
    step, more than MAX_INSTANCES numbers, or braces that are no range."""
    found = list(_RANGE.finditer(text))
    if not found:
        if "{" in text or "}" in text:
            raise TextError(f"{_clip(text)}: braces here must be a range like {{01..14}} or {{1..9..2}}")
        return [(text, None)]
    if len(found) > 1:
        raise TextError(f"{_clip(text)}: one range per name (a second one would multiply them)")
    m = found[0]
    rest = text[: m.start()] + text[m.end():]
    if "{" in rest or "}" in rest:
        raise TextError(f"{_clip(text)}: braces here must be a range like {{01..14}} or {{1..9..2}}")
    first, last, step = m.group(1), m.group(2), int(m.group(3) or 1)
    lo, hi = int(first), int(last)
    if step == 0:
        raise TextError(f"{_clip(text)}: a range's step must be at least 1")
    if hi < lo:
        raise TextError(f"{_clip(text)}: a range counts upward ({{{last}..{first}}}?)")
    count = (hi - lo) // step + 1
    if count > MAX_INSTANCES:
        raise TextError(f"{_clip(text)}: {count} numbers; a range gives at most {MAX_INSTANCES}")
    padded = any(len(end) > 1 and end.startswith("0") for end in (first, last))
    width = max(len(first), len(last)) if padded else 1
    out = []
    for number in range(lo, hi + 1, step):
        written = str(number).zfill(width)
        out.append((text[: m.start()] + written + text[m.end():], written))
    return out


def substitute(text: str, values: Mapping[str, str], limit: int | None = None) -> str:
    """`text` with every placeholder replaced by its value; TextError names an unknown one, or
    says the result would be longer than `limit` characters (checked as it grows, not after)."""
    grown = [len(text)]

    def one(m: re.Match) -> str:
        put = _value(m, values)
        grown[0] += len(put)
        if limit is not None and grown[0] > limit:
            raise TextError(f"expanding {_clip(text)} makes more text than a topology may hold ({limit} characters)")
        return put

    out = _PLACEHOLDER.sub(one, text)
    stray = _PLACEHOLDER.sub("", text)
    if "{" in stray or "}" in stray:
        raise TextError(f"{_clip(text)}: braces here must be a placeholder like {{site}} or {{n+1}} "
                        "(or {{{{ }}}} for a literal brace)")
    return out


def _value(m: re.Match, values: Mapping[str, str]) -> str:
    """What one placeholder match stands for."""
    whole = m.group(0)
    if whole in ("{{", "}}"):
        return whole[0]
    name, sign, shift = m.group(1), m.group(2), m.group(3)
    if name not in values:
        known = ", ".join("{%s}" % k for k in sorted(values))
        raise TextError(f"unknown placeholder {{{name}}}; this instance has {known}")
    value = values[name]
    if sign is None:
        return value
    if not (value.isascii() and value.isdigit()) or len(value) > MAX_DIGITS:
        raise TextError(f"{whole}: {{{name}}} is {_clip(value)!r} here, not a number to shift")
    number = int(value) + (int(shift) if sign == "+" else -int(shift))
    if number < 0:
        raise TextError(f"{whole}: {value}{sign}{shift} is below zero")
    return str(number).zfill(len(value))


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
