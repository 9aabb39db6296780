"""Value types every part of the topology file shares: names, units, MACs, the strict base.

They live apart from `model.py` so that the file format can be split by subject
(`model.py` the network, `scenario.py` what is run against it) without either
importing the other. Units are parsed here, once.
"""
from __future__ import annotations

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from typing import Annotated

from testbed import units

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


def _unit(parser, example: str, pattern: str, maximum: float | None = None):
    number: dict = {"type": "number", "minimum": 0}
    if maximum is not None:
        number["maximum"] = maximum
    return [
        BeforeValidator(parser),
        WithJsonSchema({"anyOf": [{"type": "string", "pattern": pattern}, number], "examples": [example]}),
    ]


Rate = Annotated[int, *_unit(units.parse_rate, "100Mbit", r"^\d+(\.\d+)?\s*[kKmMgGtT]?(bit|bps|b)?(/s)?$")]
Duration = Annotated[float, *_unit(units.parse_duration_ms, "10ms", r"^\d+(\.\d+)?\s*(us|ms|s|m|h)$")]
Percent = Annotated[float, *_unit(units.parse_percent, "1%", r"^\d+(\.\d+)?\s*%$", maximum=100)]
Size = Annotated[int, *_unit(units.parse_size, "4g", r"^\d+(\.\d+)?\s*[kKmMgGtT]?(i?[bB])?$")]

MAC_PATTERN = r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"
# The same, with the group bit (lowest bit of the first octet) clear: what editors check.
UNICAST_MAC_PATTERN = r"^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$"


def _unicast_mac(value: str) -> str:
    if int(value[:2], 16) & 1:
        raise ValueError(f"{value} is a group (multicast/broadcast) MAC; a host NIC needs a unicast one "
                         "(lowest bit of the first octet clear, e.g. 02:...)")
    return value


Mac = Annotated[
    str,
    Field(pattern=MAC_PATTERN),
    AfterValidator(_unicast_mac),
    WithJsonSchema({"type": "string", "pattern": UNICAST_MAC_PATTERN, "examples": ["02:00:00:00:00:01"]}),
]

class Strict(BaseModel):
    """Base for every topology object: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
