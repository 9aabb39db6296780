"""Map a field path (('links', 3, 'bw')) back to a line in the YAML file.

ruamel.yaml's round-trip loader records where every key and item started; we keep
the loaded tree next to the model so that both schema errors and whole-graph
errors can name `file:line field`. A file with site templates is checked expanded:
`origins` send a path of the expanded file back to the template line that wrote it,
naming the instance (`templates.chc.nodes[2].name (in site chc-07)`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from testbed.errors import Problem

Path = Sequence[str | int]
# An expanded path prefix -> the path in the file that wrote it, and the site instance (None: not one).
Origin = tuple[tuple, str | None]


# pydantic appends this to the loc of an error in a dict *key* (not its value);
# the key itself is already the previous part, so the marker adds nothing.
KEY_MARKER = "[key]"


def format_path(path: Path) -> str:
    """('links', 3, 'bw') -> 'links[3].bw' (the form users see in errors)."""
    out = ""
    for part in path:
        if part == KEY_MARKER:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _has(node: CommentedMap, part: Any) -> bool:
    try:
        return part in node
    except TypeError:  # an unhashable path part (pydantic reports a list key as such)
        return False


def _mark(node: Any, position, fallback: int | None) -> int | None:
    """1-based line of a key or item from its recorded position, else of its collection, else `fallback`."""
    try:
        return position()[0] + 1
    except (KeyError, IndexError, TypeError):
        line = getattr(node.lc, "line", None)
        return line + 1 if isinstance(line, int) else fallback


@dataclass
class Source:
    """The file a topology came from and its raw tree with line marks."""

    file: str
    tree: Any
    origins: Mapping[tuple, Origin] = field(default_factory=dict)
    expanded: Any = None  # the tree the model was built from (`tree` itself unless it has templates)

    def origin(self, path: Path) -> Origin:
        """Where in the file an element of the expanded file comes from (the longest known prefix)."""
        path = tuple(path)
        if not self.origins:
            return path, None
        for end in range(len(path), 0, -1):
            try:
                found = self.origins.get(path[:end])
            except TypeError:  # an unhashable part (see _has): no origin below it
                continue
            if found is not None:
                return (*found[0], *path[end:]), found[1]
        return path, None

    def line(self, path: Path) -> int | None:
        """1-based line of the deepest element of `path` (of the expanded file) present in the file."""
        return self.file_line(self.origin(path)[0])

    def file_line(self, path: Path) -> int | None:
        """1-based line of the deepest element of `path` present in the file as written."""
        node, line = self.tree, 1 if self.tree is not None else None
        for part in path:
            if isinstance(node, CommentedMap) and _has(node, part):
                # A key inherited through a YAML merge (`<<: *anchor`) has no line
                # mark of its own in this map; the map's own line is where it applies.
                line = _mark(node, lambda: node.lc.key(part), line)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                # a sequence under an unknown tag (`!!python/object/apply:x [...]`) has no item marks
                line = _mark(node, lambda: node.lc.item(part), line)
                node = node[part]
            else:
                break
        return line

    def problem(self, path: Path, message: str) -> Problem:
        written, instance = self.origin(path)
        return self.problem_at(written, instance, message)

    def problem_at(self, written: Path, instance: str | None, message: str) -> Problem:
        """A problem at a path of the file as written, in one instance of a site template (or none)."""
        where = format_path(written) + (f" (in site {instance})" if instance else "")
        return Problem(self.file, self.file_line(written), where, message)


_INSTANCE = re.compile(r"^(?P<field>.*) \(in site (?P<site>[^()\s]+)\)$")
MAX_NAMED_INSTANCES = 3  # a problem shared by many instances names the first few, then counts


def merge_instances(problems: list[Problem]) -> list[Problem]:
    """One problem per template line and message, naming the instances it occurs in.

    A wrong template line is wrong in every site it is stamped into; 14 copies of one
    message would bury the other problems, so `(in site chc-01)` ... `(in site chc-14)`
    become `(in sites chc-01, chc-02, chc-03 and 11 more)`.
    """
    groups: dict[tuple, list[str]] = {}
    plain: dict[tuple, Problem] = {}
    for p in problems:
        m = _INSTANCE.match(p.field)
        key = (p.file, p.line, m["field"] if m else p.field, p.message)
        if m:
            groups.setdefault(key, []).append(m["site"])
        plain.setdefault(key, p)
    out = []
    for key, first in plain.items():
        sites = list(dict.fromkeys(groups.get(key, [])))
        if len(sites) <= 1:
            out.append(first)
            continue
        named = ", ".join(sites[:MAX_NAMED_INSTANCES])
        more = len(sites) - MAX_NAMED_INSTANCES
        which = f"{named} and {more} more" if more > 0 else named
        out.append(Problem(first.file, first.line, f"{key[2]} (in sites {which})", first.message))
    return out
