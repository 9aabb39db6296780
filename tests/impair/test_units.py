"""Unit parsing: the strings users type for impairments."""
import pytest

from testbed.impair.units import format_ms, format_rate, parse_duration_ms, parse_percent, parse_rate_bps


@pytest.mark.parametrize("text,ms", [("10ms", 10.0), ("1.5s", 1500.0), ("250us", 0.25), ("0ms", 0.0),
                                     (" 3 ms ", 3.0), (7, 7.0)])
def test_duration(text, ms):
    assert parse_duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("bad", ["10 parsecs", "-1ms", "ms", "", "1.5.2s", True])
def test_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration_ms(bad)


@pytest.mark.parametrize("text,pct", [("1%", 1.0), ("0.5%", 0.5), ("100%", 100.0), (0, 0.0)])
def test_percent(text, pct):
    assert parse_percent(text) == pytest.approx(pct)


@pytest.mark.parametrize("bad", ["101%", "-1%", "abc", "1%%"])
def test_percent_rejects(bad):
    with pytest.raises(ValueError):
        parse_percent(bad)


@pytest.mark.parametrize("text,bps", [("100Mbit", 100_000_000), ("1Gbit", 1_000_000_000),
                                      ("500kbit", 500_000), ("50mbit", 50_000_000), ("1.5Mbit", 1_500_000),
                                      ("10Mbps", 10_000_000), ("1Mibit", 1_048_576), ("9600", 9600),
                                      ("unlimited", None), ("none", None), (None, None)])
def test_rate(text, bps):
    assert parse_rate_bps(text) == bps


@pytest.mark.parametrize("bad", ["fast", "-5Mbit", "10Xbit", "0.1bit"])
def test_rate_rejects(bad):
    with pytest.raises(ValueError):
        parse_rate_bps(bad)


def test_formatting_round_trips_tc_syntax():
    assert format_rate(50_000_000) == "50Mbit"
    assert format_rate(1_500_000) == "1500kbit"
    assert format_rate(1234) == "1234bit"
    assert format_ms(10.0) == "10ms"
    assert format_ms(0.25) == "250us"


@pytest.mark.parametrize("text", ["20", "3"])
def test_text_needs_a_unit(text):
    # '20' could be ms or s, '3' could be % or a fraction: text must say which.
    with pytest.raises(ValueError):
        parse_duration_ms(text)
    with pytest.raises(ValueError):
        parse_percent(text)
