"""Impairment values and the key=value syntax used by the CLI."""
import json

import pytest

from testbed.impair import Impairment, apply_assignments, parse_assignments


def test_defaults_are_noop():
    assert Impairment().is_noop()
    assert not Impairment(delay_ms=1).is_noop()
    assert not Impairment(rate_bps=10**6).is_noop()
    assert not Impairment(up=False).is_noop()
    assert Impairment(reorder_pct=50).is_noop()  # reorder needs delay, as in netem


def test_parse_assignments_example_from_the_docs():
    got = parse_assignments(["delay=20ms jitter=2ms loss=1% rate=50Mbit dist=normal"])
    assert got == {"delay_ms": 20.0, "jitter_ms": 2.0, "loss_pct": 1.0, "rate_bps": 50_000_000,
                   "jitter_dist": "normal"}


def test_later_items_win_and_words_up_down():
    got = parse_assignments(["delay=5ms", "delay=7ms down"])
    assert got == {"delay_ms": 7.0, "up": False}
    assert parse_assignments(["link=up"]) == {"up": True}


def test_gilbert_and_reorder_keys():
    imp = apply_assignments(Impairment(delay_ms=10), ["loss=2% model=gilbert burst=4 reorder=25% gap=5 dup=1%"])
    assert (imp.loss_model, imp.loss_burst, imp.reorder_pct, imp.reorder_gap, imp.duplicate_pct) == \
        ("gilbert", 4.0, 25.0, 5, 1.0)
    p, r = imp.gilbert_p_r()
    assert r == pytest.approx(0.25)
    assert p / (p + r) == pytest.approx(0.02)  # stationary loss = loss_pct


@pytest.mark.parametrize("item,needle", [
    ("delay=fast", "delay"), ("loss=150%", "loss"), ("rate=lots", "rate"), ("dist=cauchy", "dist"),
    ("burst=0.5", "burst"), ("gap=0", "gap"), ("delay", "key=value"), ("link=sideways", "link"),
])
def test_errors_name_the_field(item, needle):
    with pytest.raises(ValueError, match=needle):
        parse_assignments([item])


def test_unknown_key_suggests_a_close_one():
    with pytest.raises(ValueError, match="did you mean 'delay'"):
        parse_assignments(["dealy=10ms"])


def test_validation_in_the_dataclass():
    with pytest.raises(ValueError, match="delay_ms"):
        Impairment(delay_ms=-1)
    with pytest.raises(ValueError, match="jitter_dist"):
        Impairment(jitter_dist="cauchy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate_bps"):
        Impairment(rate_bps=0)
    with pytest.raises(ValueError, match="unknown"):
        Impairment().with_updates(colour="red")


def test_json_round_trip_rejects_unknown_keys():
    imp = Impairment(delay_ms=3, jitter_ms=1, jitter_dist="pareto", rate_bps=10**7, up=False)
    assert Impairment.from_dict(json.loads(json.dumps(imp.to_dict()))) == imp
    with pytest.raises(ValueError, match="bogus"):
        Impairment.from_dict({"bogus": 1})


def test_describe():
    assert Impairment().describe() == "none"
    assert Impairment(up=False).describe() == "down"
    assert "delay=10ms" in Impairment(delay_ms=10).describe()


@pytest.mark.parametrize("imp, safe", [
    (Impairment(), True),
    (Impairment(delay_ms=10), True),
    (Impairment(delay_ms=10, up=False), True),  # a cut drops a frame as it drops each of its packets
    (Impairment(delay_ms=10, jitter_ms=1), False),
    (Impairment(loss_pct=0.1), False),
    (Impairment(duplicate_pct=1), False),
    (Impairment(delay_ms=10, reorder_pct=5), False),
    (Impairment(rate_bps=10_000_000), False),
])
def test_frame_safe_is_a_constant_delay_at_most(imp, safe):
    assert imp.frame_safe() is safe
