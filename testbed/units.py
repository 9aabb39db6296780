"""Parse the human units used in topology files and on the command line.

Values are normalised once at load time (bit/s, milliseconds, percent) so the
rest of the code never sees strings. Errors say what form was expected, because
the loader turns them into `file:line field: message` lines for the user.
"""
from __future__ import annotations

import math
import re

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_RATE = re.compile(rf"^\s*{_NUM}\s*([kmgt]i?)?(bit|bps|b)?(?:/s)?\s*$", re.I)
# In text the unit is required ('10' is ambiguous); a bare YAML number is ms / percent.
_TIME = re.compile(rf"^\s*{_NUM}\s*(us|µs|ms|s|m|h)\s*$", re.I)
_PCT = re.compile(rf"^\s*{_NUM}\s*%\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.I)

_RATE_MULT = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,  # decimal, as tc
              "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}
_TIME_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_SIZE_MULT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def _number(value: int | float | str) -> float:
    """float(value), refusing what float() cannot hold: a YAML integer of 400 digits (or 0x and 5 000
    hex digits) raises OverflowError, not ValueError, and pydantic would let that escape as a crash."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError("number too large") from None


def parse_rate(value: str | int | float) -> int:
    """'100Mbit' -> 100_000_000 bit/s. A bare number is bit/s."""
    if isinstance(value, bool):
        raise ValueError("expected a rate like '100Mbit'")
    if isinstance(value, (int, float)):
        bps = _number(value)
    else:
        m = _RATE.match(str(value))
        if not m:
            raise ValueError(f"expected a rate like '100Mbit', got {value!r}")
        bps = _number(m.group(1)) * _RATE_MULT[(m.group(2) or "").lower()]
    # int() of inf raises OverflowError (which pydantic would not report), and a
    # fraction of a bit/s truncates to 0, which tc reads as "no limit".
    if not math.isfinite(bps):
        raise ValueError("rate must be a finite number")
    if bps <= 0:
        raise ValueError("rate must be positive")
    if bps < 1:
        raise ValueError("rate must be at least 1 bit/s")
    return int(bps)


def parse_duration_ms(value: str | int | float) -> float:
    """'10ms' -> 10.0, '1.5s' -> 1500.0, '250us' -> 0.25. A bare number is ms."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '10ms'")
    if isinstance(value, (int, float)):
        ms = _number(value)
    else:
        m = _TIME.match(str(value))
        if not m:
            raise ValueError(f"expected a duration like '10ms', '1.5s' or '250us', got {value!r}")
        ms = _number(m.group(1)) * _TIME_MS[m.group(2).lower()]
    # .nan and .inf are YAML floats; 400 digits of ms overflow a float to inf
    if not math.isfinite(ms):
        raise ValueError("duration must be a finite number")
    if ms < 0:
        raise ValueError("duration must not be negative")
    return ms


def parse_percent(value: str | int | float) -> float:
    """'1%' -> 1.0. A bare number is percent. Must lie in 0..100."""
    if isinstance(value, bool):
        raise ValueError("expected a percentage like '1%'")
    if isinstance(value, (int, float)):
        pct = _number(value)
    else:
        m = _PCT.match(str(value))
        if not m:
            raise ValueError(f"expected a percentage like '1%' or '0.5%', got {value!r}")
        pct = _number(m.group(1))
    if not 0 <= pct <= 100:
        raise ValueError(f"percentage must be between 0% and 100%, got {pct}%")
    return pct


def parse_size(value: str | int) -> int:
    """'4g' -> bytes (binary multiples, as Docker reads memory sizes)."""
    if isinstance(value, bool):
        raise ValueError("expected a size like '512m' or '4g'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative, got {value}")
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"expected a size like '512m' or '4g', got {value!r}")
    size = _number(m.group(1)) * _SIZE_MULT[m.group(2).lower()]
    if not math.isfinite(size):  # 400 digits: inf, and int(inf) raises OverflowError
        raise ValueError(f"size too large, got {value!r}")
    return int(size)


def format_rate(bps: float) -> str:
    """Inverse of parse_rate for display: 100000000 -> '100Mbit'."""
    for unit, mult in (("Gbit", 1e9), ("Mbit", 1e6), ("kbit", 1e3)):
        if bps >= mult:
            return f"{bps / mult:g}{unit}"
    return f"{bps:g}bit"


def format_ms(ms: float) -> str:
    """Display a duration in the unit a person would write."""
    if ms >= 1000:
        return f"{ms / 1000:g}s"
    if ms < 1 and ms > 0:
        return f"{ms * 1000:g}us"
    return f"{ms:g}ms"


def mac_to_int(mac: str) -> int:
    """'02:7b:00:00:00:01' -> its 48-bit integer (masks and aggregates are arithmetic on these)."""
    return int(mac.replace(":", ""), 16)


def int_to_mac(value: int) -> str:
    """A 48-bit integer as a MAC, lower-case with colons."""
    h = f"{value:012x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))
