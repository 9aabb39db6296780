"""testbed/units.py: the human units of topology files (rates, durations, percent, sizes)."""
from __future__ import annotations

import pytest

from testbed import units


@pytest.mark.parametrize(("text", "bps"), [
    ("100Mbit", 100_000_000), ("100mbit", 100_000_000), ("1Gbit", 1_000_000_000), ("1.5Gbit", 1_500_000_000),
    ("64kbit", 64_000), ("10 Mbps", 10_000_000), ("2M", 2_000_000), ("300Mbit/s", 300_000_000),
    ("1000", 1000), (" 5mbit ", 5_000_000), ("1T", 10**12), (2_000_000, 2_000_000), (1.0e6, 1_000_000),
])
def test_parse_rate(text, bps) -> None:
    assert units.parse_rate(text) == bps


@pytest.mark.parametrize("bad", ["", "fast", "10 parsecs", "-5Mbit", "10Pbit", "Mbit", "0", "0Mbit", 0, -1, True])
def test_parse_rate_rejects(bad) -> None:
    with pytest.raises(ValueError):
        units.parse_rate(bad)


def test_parse_rate_fraction_below_one_bit_is_rejected() -> None:
    with pytest.raises(ValueError):
        units.parse_rate(0.5)


def test_parse_rate_infinity_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        units.parse_rate(float("inf"))


@pytest.mark.parametrize(("text", "ms"), [
    ("10ms", 10.0), ("1.5s", 1500.0), ("250us", 0.25), ("2m", 120_000.0), ("1h", 3_600_000.0),
    ("5 MS", 5.0), ("0ms", 0.0), (7, 7.0), (0.5, 0.5),
])
def test_parse_duration(text, ms) -> None:
    assert units.parse_duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("bad", ["", "10", "10 days", "ms", "-1ms", -1, False])
def test_parse_duration_rejects(bad) -> None:
    with pytest.raises(ValueError):
        units.parse_duration_ms(bad)


@pytest.mark.parametrize(("text", "pct"), [("1%", 1.0), ("0.5 %", 0.5), ("100%", 100.0), ("0%", 0.0), (3, 3.0)])
def test_parse_percent(text, pct) -> None:
    assert units.parse_percent(text) == pct


@pytest.mark.parametrize("bad", ["1", "one%", "150%", "-1%", 101, -0.1, True, float("nan")])
def test_parse_percent_rejects(bad) -> None:
    with pytest.raises(ValueError):
        units.parse_percent(bad)


@pytest.mark.parametrize(("text", "size"), [
    ("512m", 512 * 2**20), ("4g", 4 * 2**30), ("4GiB", 4 * 2**30), ("1.5k", 1536), ("100", 100), (2048, 2048),
    ("1 MB", 2**20),
])
def test_parse_size(text, size) -> None:
    assert units.parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "lots", "4 gigs", "-1g", True])
def test_parse_size_rejects(bad) -> None:
    with pytest.raises(ValueError):
        units.parse_size(bad)


def test_parse_size_rejects_negative_int() -> None:
    with pytest.raises(ValueError):
        units.parse_size(-5)


@pytest.mark.parametrize(("bps", "text"), [
    (100_000_000, "100Mbit"), (1_000_000_000, "1Gbit"), (1_500_000, "1.5Mbit"), (64_000, "64kbit"),
    (999, "999bit"), (0, "0bit"),
])
def test_format_rate(bps, text) -> None:
    assert units.format_rate(bps) == text


@pytest.mark.parametrize(("ms", "text"), [
    (10.0, "10ms"), (1500.0, "1.5s"), (0.25, "250us"), (0.0, "0ms"), (999.0, "999ms"), (1000.0, "1s"),
])
def test_format_ms(ms, text) -> None:
    assert units.format_ms(ms) == text


@pytest.mark.parametrize("text", ["100Mbit", "1Gbit", "64kbit", "2.5Gbit", "300bit"])
def test_rate_round_trip(text) -> None:
    assert units.format_rate(units.parse_rate(text)) == text


@pytest.mark.parametrize("text", ["10ms", "1.5s", "250us", "0ms"])
def test_duration_round_trip(text) -> None:
    assert units.format_ms(units.parse_duration_ms(text)) == text
