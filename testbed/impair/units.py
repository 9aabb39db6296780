"""Unit parsing for impairment values ('10ms', '1%', '50Mbit').

Parsing is `testbed.units` (one set of rules for topology files and `testbed
link set`); this module adds what only impairments need: 'unlimited' rates and
formatting in tc's syntax.
"""
from __future__ import annotations

from testbed.units import parse_duration_ms, parse_percent, parse_rate

__all__ = ["parse_duration_ms", "parse_percent", "parse_rate_bps", "format_rate", "format_ms"]

_UNLIMITED = {"none", "unlimited", "off", "0"}


def parse_rate_bps(value: str | int | float | None) -> int | None:
    """'100Mbit' -> 100_000_000, '500kbit', '1Gbit'; 'unlimited'/'none'/0 -> None.

    Decimal prefixes (k = 1000) as in tc; 'Ki'/'Mi' are binary. 'bps' means
    bits per second here, like everywhere else in the testbed.
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"rate must not be negative, got {value!r}")
        if value == 0:
            return None
    elif isinstance(value, str) and value.strip().lower() in _UNLIMITED:
        return None
    return parse_rate(value)


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
