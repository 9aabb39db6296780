"""`load(path) -> Topology`: strict YAML loading with every error located.

Three stages, each reporting all its problems at once: YAML syntax (ruamel),
schema (pydantic, unknown keys rejected with a hint), whole graph (validate.py).
Nothing is built until all three pass.
"""
from __future__ import annotations

import difflib
from pathlib import Path as FsPath

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


def _message(err: dict) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        hint = difflib.get_close_matches(key, _FIELDS, n=1)
        return "unknown key" + (f"; did you mean '{hint[0]}'?" if hint else "")
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
        # pydantic may report the same location twice (e.g. union branches); keep one.
        unique = list(dict.fromkeys(problems))
        raise TopologyError(sorted(unique, key=lambda p: (p.line or 0, p.field))) from None
    problems = validate(topo, source)
    if problems:
        raise TopologyError(problems)
    return topo


def load(path: str | FsPath) -> model.Topology:
    """Load and validate a topology file; raises TopologyError listing every problem."""
    p = FsPath(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError([Problem(str(path), None, "", f"cannot read file: {exc.strerror}")]) from None
    return parse_text(text, str(path))


__all__ = ["load", "parse_text", "format_path"]
