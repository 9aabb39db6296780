"""Map a field path (('links', 3, 'bw')) back to a line in the YAML file.

ruamel.yaml's round-trip loader records where every key and item started; we keep
the loaded tree next to the model so that both schema errors and whole-graph
errors can name `file:line field`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from testbed.errors import Problem

Path = Sequence[str | int]


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

    def line(self, path: Path) -> int | None:
        """1-based line of the deepest element of `path` present in the file."""
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
        return Problem(self.file, self.line(path), format_path(path), message)
