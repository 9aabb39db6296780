"""Unit parsing for impairment values ('10ms', '1%', '50Mbit').

Kept inside the impairment package so the engine stays self-contained; the
conventions match `testbed.units` (a bare duration is ms, a bare percentage is
percent, 'bps' means bits per second) so the two can be merged later without
changing what users type.
"""
from __future__ import annotations

import re

_TIME = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s)?\s*$", re.I)
_PCT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*%?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]i?)?(bit|bps|b)?(?:/s)?\s*$", re.I)

_TIME_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_RATE_MULT = {
    "": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
    "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4,
}
_UNLIMITED = {"none", "unlimited", "off", "0"}


def parse_duration_ms(value: str | int | float) -> float:
    """'10ms' -> 10.0, '1.5s' -> 1500.0, '250us' -> 0.25; a bare number is ms."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '10ms', got {value!r}")
    if isinstance(value, (int, float)):
        ms = float(value)
    else:
        m = _TIME.match(value)
        if not m:
            raise ValueError(f"expected a duration like '10ms', '1.5s' or '250us', got {value!r}")
        ms = float(m.group(1)) * _TIME_MS[(m.group(2) or "ms").lower()]
    if ms < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return ms


def parse_percent(value: str | int | float) -> float:
    """'1%' -> 1.0, '0.5%' -> 0.5; a bare number is percent. Must lie in 0..100."""
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage like '1%', got {value!r}")
    if isinstance(value, (int, float)):
        pct = float(value)
    else:
        m = _PCT.match(value)
        if not m:
            raise ValueError(f"expected a percentage like '1%' or '0.5%', got {value!r}")
        pct = float(m.group(1))
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentage must be between 0% and 100%, got {value!r}")
    return pct


def parse_rate_bps(value: str | int | float | None) -> int | None:
    """'100Mbit' -> 100_000_000, '500kbit', '1Gbit'; 'unlimited'/'none'/0 -> None.

    Decimal prefixes (k = 1000) as in tc; 'Ki'/'Mi' are binary. 'bps' means
    bits per second here, like everywhere else in the testbed.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a rate like '50Mbit', got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"rate must not be negative, got {value!r}")
        return int(value) or None
    if value.strip().lower() in _UNLIMITED:
        return None
    m = _RATE.match(value)
    if not m:
        raise ValueError(f"expected a rate like '50Mbit', '1Gbit' or '500kbit', got {value!r}")
    bps = int(float(m.group(1)) * _RATE_MULT[(m.group(2) or "").lower()])
    if bps <= 0:
        raise ValueError(f"rate must be at least 1 bit/s, got {value!r}")
    return bps


def format_rate(bps: int | None) -> str:
    """50_000_000 -> '50Mbit' (tc syntax, exact: falls back to plain bit)."""
    if bps is None:
        return "unlimited"
    for unit, mult in (("Gbit", 10**9), ("Mbit", 10**6), ("kbit", 10**3)):
        if bps % mult == 0:
            return f"{bps // mult}{unit}"
    return f"{bps}bit"


def format_ms(ms: float) -> str:
    """10.0 -> '10ms', 0.25 -> '250us' (tc syntax, microsecond precision)."""
    us = round(ms * 1000)
    return f"{us // 1000}ms" if us % 1000 == 0 else f"{us}us"
