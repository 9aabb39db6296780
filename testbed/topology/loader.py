"""`load(path) -> Topology`: strict YAML loading with every error located.

Three stages, each reporting all its problems at once: YAML syntax (ruamel),
schema (pydantic, unknown keys rejected with a hint), whole graph (validate.py).
Nothing is built until all three pass.
"""
from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from pathlib import Path as FsPath
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from testbed.errors import Problem, TopologyError
from testbed.topology import model
from testbed.topology.source import Source, format_path
from testbed.topology.validate import validate


def _all_field_names() -> set[str]:
    names: set[str] = set()
    for obj in vars(model).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel):
            for fname, field in obj.model_fields.items():
                names.add(field.alias or fname)
    return names


_FIELDS = _all_field_names()


def _alternatives(annotation: Any) -> list[Any]:
    """Strip Annotated, Optional and unions: the concrete types a value may have."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _alternatives(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _alternatives(arg)]
    return [annotation]


def _step(annotation: Any, part: str | int) -> list[Any] | None:
    """The type(s) one loc step below a value of this type; None if `part` does not fit it."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for fname, field in annotation.model_fields.items():
            if part in (fname, field.alias):
                return [field.annotation]
        return None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, set, frozenset) and isinstance(part, int):
        return list(args[:1])
    if origin is tuple and isinstance(part, int):
        return [args[0]] if len(args) == 2 and args[1] is Ellipsis else list(args[part:part + 1])
    if origin is dict:
        return list(args[1:2])  # any key leads to the value type
    return None


def _fields_at(loc: Sequence[str | int]) -> set[str] | None:
    """Keys allowed in the mapping at `loc` (the parent of an unknown key), or None if unknown.

    Walks the model's type annotations along the path (fields, list items, dict
    values), so a misspelt top-level key is matched against the top-level fields only.
    """
    current: list[Any] = [model.Topology]
    for part in loc:
        nxt = [t for ann in current for alt in _alternatives(ann) for t in (_step(alt, part) or [])]
        if not nxt:
            return None
        current = nxt
    names = {
        field.alias or fname
        for ann in current
        for alt in _alternatives(ann)
        if isinstance(alt, type) and issubclass(alt, BaseModel)
        for fname, field in alt.model_fields.items()
    }
    return names or None


def _hint(loc: Sequence[str | int]) -> str | None:
    """The closest allowed key to the unknown one, never the key itself."""
    key = str(loc[-1])
    allowed = _fields_at(loc[:-1])
    candidates = (allowed if allowed is not None else _FIELDS) - {key}
    close = difflib.get_close_matches(key, sorted(candidates), n=1)
    return close[0] if close else None


def _message(err: dict) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        hint = _hint(err["loc"])
        return "unknown key" + (f"; did you mean '{hint}'?" if hint else "")
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        return f"{msg} (got {err.get('input')!r})"
    return msg.removeprefix("Value error, ")


def parse_text(text: str, file: str) -> model.Topology:
    """Load a topology from YAML text; `file` is only used in messages."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise TopologyError([Problem(file, line, "", f"YAML syntax: {exc.problem or exc}")]) from None
    except YAMLError as exc:
        raise TopologyError([Problem(file, None, "", f"YAML syntax: {exc}")]) from None
    source = Source(file, tree)
    if not isinstance(tree, dict):
        raise TopologyError([Problem(file, 1, "", "expected a mapping at the top level (name:, nodes:, ...)")])
    try:
        topo = model.Topology.model_validate(tree)
    except ValidationError as exc:
        problems = [
            source.problem(err["loc"], _message(err))
            for err in exc.errors(include_url=False)
        ]
        raise TopologyError(_in_file_order(problems)) from None
    topo._source = source
    problems = validate(topo, source)
    if problems:
        raise TopologyError(_in_file_order(problems))
    return topo


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    """Drop repeats (pydantic may report one location twice, e.g. union branches); sort by line, then field.

    Schema and graph problems read top to bottom, the order a person fixes a file in.
    """
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line or 0, p.field))


def load(path: str | FsPath) -> model.Topology:
    """Load and validate a topology file; raises TopologyError listing every problem."""
    p = FsPath(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TopologyError([Problem(str(path), None, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TopologyError([Problem(str(path), line, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x} "
                                                          f"at offset {exc.start})")]) from None
    return parse_text(text, str(path))


__all__ = ["load", "parse_text", "format_path"]
