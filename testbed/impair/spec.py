"""What one direction of a link does to the frames that cross it.

`Impairment` is a frozen value: backends compare, serialise (JSON for the relay's
control channel) and diff it; changing a link means building a new one with
`with_updates(**parse_assignments([...]))`. The field semantics follow netem so a
topology behaves the same whichever backend runs it:

- delay_ms + jitter_ms: each packet gets delay + a sample of `jitter_dist` scaled
  to a standard deviation (or, for 'uniform', a half-width) of jitter_ms, never
  below 0, and never earlier than the packet before it: jitter does not reorder (a link,
  a radio link's RLC/PDCP included, delivers in order; netem keeps order too once it has a
  rate, which the netem backend then gives it). Reordering is `reorder_pct`'s alone.
- loss_model 'random': each packet is lost with probability loss_pct. 'gilbert':
  a two-state Gilbert model (good state: no loss, bad state: all lost) whose
  stationary loss is loss_pct and whose mean burst length is loss_burst packets
  (netem `loss gemodel p r 100% 0%`, see `gilbert_p_r`).
- duplicate_pct: a copy is sent as well (with its own delay sample).
- reorder_pct / reorder_gap: netem semantics: every reorder_gap-th packet is,
  with probability reorder_pct, sent immediately instead of delayed, so it
  overtakes the delayed ones. Needs delay_ms > 0 to have any effect.
- rate_bps: serialisation delay; a packet leaves no earlier than the previous
  departure + len*8/rate. None = unlimited.
- limit: packets queued per direction beyond which new packets are dropped
  (netem's default limit is 1000).
- up: False drops everything.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from testbed.impair.units import parse_duration_ms, parse_percent, parse_rate_bps

JitterDist = Literal["uniform", "normal", "pareto", "paretonormal"]
LossModel = Literal["random", "gilbert"]
JITTER_DISTS: tuple[str, ...] = ("uniform", "normal", "pareto", "paretonormal")
LOSS_MODELS: tuple[str, ...] = ("random", "gilbert")


@dataclass(frozen=True)
class Impairment:
    """Impairment of one direction of one link (see module docstring)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    jitter_dist: JitterDist = "normal"
    loss_pct: float = 0.0
    loss_model: LossModel = "random"
    loss_burst: float = 1.0
    duplicate_pct: float = 0.0
    reorder_pct: float = 0.0
    reorder_gap: int = 1
    rate_bps: int | None = None
    limit: int = 1000
    up: bool = True

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"{name}: {why} (got {getattr(self, name)!r})")

        for name in ("delay_ms", "jitter_ms"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise bad(name, "must be a finite number >= 0")
        for name in ("loss_pct", "duplicate_pct", "reorder_pct"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 100:
                raise bad(name, "must be a percentage between 0 and 100")
        if self.jitter_dist not in JITTER_DISTS:
            raise bad("jitter_dist", f"must be one of {', '.join(JITTER_DISTS)}")
        if self.loss_model not in LOSS_MODELS:
            raise bad("loss_model", f"must be one of {', '.join(LOSS_MODELS)}")
        if not isinstance(self.loss_burst, (int, float)) or not self.loss_burst >= 1:
            raise bad("loss_burst", "mean burst length must be >= 1 packet")
        if self.loss_model == "gilbert" and self.loss_pct >= 100:
            raise bad("loss_pct", "gilbert loss must be below 100% (use up=False to cut a link)")
        if not isinstance(self.reorder_gap, int) or isinstance(self.reorder_gap, bool) or self.reorder_gap < 1:
            raise bad("reorder_gap", "must be an integer >= 1")
        if self.rate_bps is not None and (
            not isinstance(self.rate_bps, int) or isinstance(self.rate_bps, bool) or self.rate_bps < 1
        ):
            raise bad("rate_bps", "must be None (unlimited) or an integer >= 1 bit/s")
        if not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 1:
            raise bad("limit", "must be an integer >= 1 packet")
        if not isinstance(self.up, bool):
            raise bad("up", "must be True or False")

    def is_noop(self) -> bool:
        """True if frames cross unchanged, so a backend may skip all work."""
        return (
            self.up
            and self.delay_ms == 0
            and self.jitter_ms == 0
            and self.loss_pct == 0
            and self.duplicate_pct == 0
            and self.rate_bps is None
        )  # reorder without delay is a no-op, as in netem

    def frame_safe(self) -> bool:
        """True if it does to a 64 KB TCP frame what it would do to each of the packets the frame carries:
        a constant delay (or nothing), or a cut. Then a link may carry TCP as such frames (userspace TSO),
        about ten times as fast; jitter, loss, duplication, reordering and a rate must see packets."""
        return (self.jitter_ms == 0 and self.loss_pct == 0 and self.duplicate_pct == 0
                and self.reorder_pct == 0 and self.rate_bps is None)

    def gilbert_p_r(self) -> tuple[float, float]:
        """(p, r) transition probabilities (0..1) of the Gilbert model.

        p = P(good -> bad), r = P(bad -> good). The mean burst is 1/r and the
        stationary loss is p/(p+r); solving for loss_pct and loss_burst gives
        these values.
        """
        loss = self.loss_pct / 100.0
        r = 1.0 / self.loss_burst
        p = r * loss / (1.0 - loss) if loss < 1 else 1.0
        return min(p, 1.0), r

    def with_updates(self, **changes: Any) -> Impairment:
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown impairment field(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Impairment:
        """Inverse of to_dict; rejects unknown keys instead of ignoring them."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown impairment field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def describe(self) -> str:
        """Short human summary, e.g. 'delay=10ms jitter=2ms(normal) loss=1%'."""
        if not self.up:
            return "down"
        parts = []
        if self.delay_ms:
            parts.append(f"delay={self.delay_ms:g}ms")
        if self.jitter_ms:
            parts.append(f"jitter={self.jitter_ms:g}ms({self.jitter_dist})")
        if self.loss_pct:
            burst = f",burst={self.loss_burst:g}" if self.loss_model == "gilbert" else ""
            parts.append(f"loss={self.loss_pct:g}%({self.loss_model}{burst})")
        if self.duplicate_pct:
            parts.append(f"dup={self.duplicate_pct:g}%")
        if self.reorder_pct:
            parts.append(f"reorder={self.reorder_pct:g}%(gap={self.reorder_gap})")
        if self.rate_bps:
            parts.append(f"rate={self.rate_bps}bit/s")
        return " ".join(parts) or "none"


def _parse_bool_up(value: str) -> bool:
    v = value.strip().lower()
    if v in ("up", "true", "yes", "on", "1"):
        return True
    if v in ("down", "false", "no", "off", "0"):
        return False
    raise ValueError(f"expected up/down, got {value!r}")


def _parse_choice(choices: tuple[str, ...]):
    def parse(value: str) -> str:
        v = value.strip().lower()
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return v
    return parse


def _parse_at_least_1(cast: type, what: str):
    """Parser for a number >= 1: a mean burst length (float) or a count (int)."""
    def parse(value: str):
        try:
            v = cast(value)
        except ValueError:
            raise ValueError(f"expected {what}, got {value!r}") from None
        if not v >= 1:
            raise ValueError(f"must be >= 1, got {value!r}")
        return v
    return parse


_parse_burst = _parse_at_least_1(float, "a mean burst length in packets like '3'")
_parse_int_min1 = _parse_at_least_1(int, "a whole number")


# user-facing key -> (Impairment field, parser). Aliases follow tc/netem words.
_KEYS: dict[str, tuple[str, Any]] = {
    "delay": ("delay_ms", parse_duration_ms),
    "jitter": ("jitter_ms", parse_duration_ms),
    "dist": ("jitter_dist", _parse_choice(JITTER_DISTS)),
    "distribution": ("jitter_dist", _parse_choice(JITTER_DISTS)),
    "loss": ("loss_pct", parse_percent),
    "loss_model": ("loss_model", _parse_choice(LOSS_MODELS)),
    "model": ("loss_model", _parse_choice(LOSS_MODELS)),
    "burst": ("loss_burst", _parse_burst),
    "dup": ("duplicate_pct", parse_percent),
    "duplicate": ("duplicate_pct", parse_percent),
    "reorder": ("reorder_pct", parse_percent),
    "gap": ("reorder_gap", _parse_int_min1),
    "rate": ("rate_bps", parse_rate_bps),
    "limit": ("limit", _parse_int_min1),
    "link": ("up", _parse_bool_up),
    "up": ("up", _parse_bool_up),
}


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """Turn ["delay=20ms jitter=2ms", "loss=1%"] into Impairment field updates.

    Each item may hold several space-separated key=value pairs; later ones win.
    The bare words 'up' and 'down' set the link state. Raises ValueError naming
    the offending key (with a did-you-mean hint for unknown keys).
    """
    updates: dict[str, Any] = {}
    for item in items:
        for token in item.split():
            if token.lower() in ("up", "down"):
                updates["up"] = token.lower() == "up"
                continue
            key, sep, value = token.partition("=")
            key = key.strip().lower().replace("-", "_")
            if not sep or not key or not value:
                raise ValueError(f"{token!r}: expected key=value, e.g. delay=20ms")
            if key not in _KEYS:
                close = difflib.get_close_matches(key, list(_KEYS), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"unknown impairment setting {key!r}{hint}; known: {', '.join(sorted(_KEYS))}"
                )
            field_name, parse = _KEYS[key]
            try:
                updates[field_name] = parse(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
    return updates


def apply_assignments(base: Impairment, items: list[str]) -> Impairment:
    """base with the updates of `parse_assignments(items)`; validation errors name the field."""
    return base.with_updates(**parse_assignments(items))
