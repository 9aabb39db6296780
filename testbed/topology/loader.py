"""`load(path) -> Topology`: strict YAML loading with every error located.

Three stages, each reporting all its problems at once: YAML syntax (ruamel),
schema (pydantic, unknown keys rejected with a hint), whole graph (validate.py).
Nothing is built until all three pass.

Any file, however hostile, gets a topology or `file:line` problems (exit 2), never a
traceback or a hang: size, nesting and alias expansion are bounded first (bounds.py),
values ruamel cannot construct (an integer of 5 000 digits, 2021-13-45) are problems at
their line, and text in UTF-16/32 with a byte-order mark is read as YAML allows.
"""
from __future__ import annotations

import codecs
import difflib
import types
import warnings
from collections.abc import Sequence
from pathlib import Path as FsPath
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import RoundTripScanner

from testbed.errors import Problem, TopologyError
from testbed.topology import bounds, model
from testbed.topology.expand import expand
from testbed.topology.source import Source, format_path, merge_instances
from testbed.topology.templates import TopologyFile
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
    Starts from the file's own syntax (templates and site ranges included).
    """
    current: list[Any] = [TopologyFile]
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
        return f"{msg} (got {_short(err.get('input'))})"
    return msg.removeprefix("Value error, ")


def _short(value: Any, limit: int = 80) -> str:
    """repr of a value from the file, cut: a 1 MB name must not make a 1 MB message."""
    text = repr(value) if isinstance(value, (str, bytes, int, float, bool, type(None))) else f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "…"


MAX_INT = 1 << 64


class _LimitExceeded(MarkedYAMLError):
    """The file breaks one of bounds.py's limits, at the mark."""


class _ValueNotConstructible(ConstructorError):
    """A scalar ruamel parsed but could not turn into a value, located at the scalar."""


class _Constructor(RoundTripConstructor):
    """ruamel's round-trip constructor, with every failure to build a value located.

    ruamel lets plain Python errors out of its value constructors (int() of a
    5 000-digit number, datetime() of month 13, ...): here they become YAML errors
    carrying the node's position. RecursionError passes: `_yaml_tree` reports it.
    """

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            data = super().construct_object(node, deep)
        except (YAMLError, RecursionError):
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a constructor raises is the file's problem
            raise _ValueNotConstructible(None, None, f"cannot read this value ({exc})", node.start_mark) from None
        # 0x and 5 000 hex digits is a valid YAML int; no field needs more than 64 bits, and a
        # bigger one breaks whatever formats it (str() of over 4 300 digits raises ValueError)
        if isinstance(data, int) and not isinstance(data, bool) and not -MAX_INT <= data <= MAX_INT:
            raise _ValueNotConstructible(None, None, "integer too large (more than 64 bits)", node.start_mark)
        return data


class _Scanner(RoundTripScanner):
    """ruamel's round-trip scanner, refusing collections nested deeper than bounds.MAX_DEPTH.

    Checked while scanning, at the token that opens the collection too many: ruamel's
    scanner slows down quadratically with flow depth (a megabyte of `[` would take hours)
    and its composer recurses (RecursionError a few hundred levels down). Open block
    collections (`indents`) plus open flow collections never exceed the real depth.
    """

    def _check_depth(self) -> None:
        if self.flow_level + len(self.indents) > bounds.MAX_DEPTH:
            raise _LimitExceeded(None, None, f"nested more than {bounds.MAX_DEPTH} levels deep", self.reader.get_mark())

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        super().fetch_flow_collection_start(TokenClass, to_push)
        self._check_depth()

    def add_indent(self, column: int) -> bool:
        added = super().add_indent(column)
        if added:
            self._check_depth()
        return added


class _Composer(Composer):
    """ruamel's composer, stopping at bounds.MAX_NODES nodes written in the file (an alias counts
    once here; bounds.measure counts expansions), so a megabyte of tiny items fails early."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._nodes = getattr(self, "_nodes", 0) + 1
        if self._nodes > bounds.MAX_NODES:
            raise _LimitExceeded(None, None, f"more than {bounds.MAX_NODES} YAML nodes in the file",
                                 self.parser.peek_event().start_mark)
        return super().compose_node(parent, index)


def _too_deep_line(text: str) -> int | None:
    """Line where collections first nest deeper than bounds.MAX_DEPTH (the event parser does not recurse)."""
    depth = 0
    try:
        for event in YAML(typ="rt").parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > bounds.MAX_DEPTH:
                    return event.start_mark.line + 1 if event.start_mark else None
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        pass
    return None


def _yaml_tree(text: str, file: str) -> Any:
    """The round-trip tree of `text`, or TopologyError with the line of whatever is wrong."""
    yaml = YAML(typ="rt")
    yaml.Scanner = _Scanner
    yaml.Composer = _Composer
    yaml.Constructor = _Constructor
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReusedAnchorWarning)  # legal YAML: the later anchor wins
            return yaml.load(text)
    except _LimitExceeded as exc:
        mark = exc.problem_mark
        raise TopologyError([Problem(file, mark.line + 1 if mark else None, "", exc.problem)]) from None
    except _ValueNotConstructible as exc:
        mark = exc.problem_mark
        raise TopologyError([Problem(file, mark.line + 1 if mark else None, "", f"YAML: {exc.problem}")]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise TopologyError([Problem(file, line, "", f"YAML syntax: {exc.problem or exc}")]) from None
    except ReaderError as exc:  # a character YAML does not allow (NUL, most control characters)
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        hint = " (UTF-16 text without a byte-order mark?)" if exc.character in (0, "\0") else ""
        raise TopologyError([Problem(file, line, "", f"YAML syntax: unacceptable character "
                                                     f"#x{_codepoint(exc.character):04x}: {exc.reason}{hint}")]) from None
    except YAMLError as exc:
        raise TopologyError([Problem(file, None, "", f"YAML syntax: {exc}")]) from None
    except RecursionError:
        raise TopologyError([Problem(file, _too_deep_line(text), "",
                                     f"nested more than {bounds.MAX_DEPTH} levels deep")]) from None
    except Exception as exc:  # noqa: BLE001 - ruamel failing in a way it does not type: still the file's problem
        raise TopologyError([Problem(file, 1, "", f"YAML: cannot read this file ({type(exc).__name__}: "
                                                  f"{_short(str(exc), 200)})")]) from None


def _codepoint(ch: Any) -> int:
    return ch if isinstance(ch, int) else ord(ch) if isinstance(ch, str) and len(ch) == 1 else 0


def parse_text(text: str, file: str) -> model.Topology:
    """Load a topology from YAML text; `file` is only used in messages."""
    if len(text) > bounds.MAX_FILE_BYTES:
        line = text[: bounds.MAX_FILE_BYTES].count("\n") + 1
        raise TopologyError([Problem(file, line, "", f"more than {bounds.MAX_FILE_BYTES >> 20} MiB of text, the limit "
                                                     "for a topology file; nothing parsed")])
    tree = _yaml_tree(text, file)
    source = Source(file, tree)
    if not isinstance(tree, dict):
        raise TopologyError([Problem(file, 1, "", "expected a mapping at the top level (name:, nodes:, ...)")])
    try:
        bounds.measure(tree)
    except bounds.Exceeded as exc:
        raise TopologyError([source.problem(exc.path, exc.message)]) from None
    expanded = expand(tree, source, _message)  # site templates and ranges, if the file has any
    if expanded.problems:
        raise TopologyError(in_file_order(expanded.problems))
    source = Source(file, tree, expanded.origins, expanded.tree)
    if expanded.tree is not tree:
        try:
            bounds.measure(expanded.tree)
        except bounds.Exceeded as exc:
            raise TopologyError([source.problem(exc.path, exc.message)]) from None
    try:
        topo = model.Topology.model_validate(expanded.tree)
    except ValidationError as exc:
        problems = [
            source.problem(err["loc"], _message(err))
            for err in exc.errors(include_url=False)
        ]
        raise TopologyError(in_file_order(expanded.unused + problems)) from None
    topo._source = source
    problems = expanded.unused + validate(topo, source)
    if problems:
        raise TopologyError(in_file_order(problems))
    return topo


def in_file_order(problems: list[Problem]) -> list[Problem]:
    """Drop repeats (pydantic may report one location twice, e.g. union branches; a template line
    once per instance); sort by line, then field.

    Schema and graph problems read top to bottom, the order a person fixes a file in.
    """
    unique = sorted(merge_instances(list(dict.fromkeys(problems))), key=lambda p: (p.line or 0, p.field))
    if len(unique) > bounds.MAX_PROBLEMS:
        more = len(unique) - bounds.MAX_PROBLEMS
        unique = unique[: bounds.MAX_PROBLEMS] + [Problem(unique[0].file, None, "", f"... and {more} more problem(s)")]
    return unique


def load(path: str | FsPath) -> model.Topology:
    """Load and validate a topology file; raises TopologyError listing every problem."""
    file = str(path)
    try:
        with open(FsPath(path), "rb") as fh:
            data = fh.read(bounds.MAX_FILE_BYTES + 1)  # never more: /dev/zero is a file name too
    except OSError as exc:
        raise TopologyError([Problem(file, None, "", f"cannot read file: {exc.strerror or exc}")]) from None
    if len(data) > bounds.MAX_FILE_BYTES:
        line = data[: bounds.MAX_FILE_BYTES].count(b"\n") + 1
        raise TopologyError([Problem(file, line, "", f"file larger than {bounds.MAX_FILE_BYTES >> 20} MiB, the limit "
                                                     "for a topology file; nothing parsed")])
    return parse_text(decode(data, file), file)


# Byte-order marks YAML allows (UTF-32 first: its little-endian mark starts with UTF-16's).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode(data: bytes, file: str) -> str:
    """UTF-8, or UTF-8/16/32 as its byte-order mark says; TopologyError at the line of a bad byte."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        if encoding == "utf-8":
            why = f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        else:
            why = f"not valid {encoding.removesuffix('-sig').upper()} text ({exc.reason} at byte offset {exc.start})"
        raise TopologyError([Problem(file, line, "", why)]) from None


__all__ = ["load", "parse_text", "decode", "format_path", "in_file_order"]
