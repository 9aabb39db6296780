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


@dataclass
class Source:
    """The file a topology came from and its raw tree with line marks."""

    file: str
    tree: Any

    def line(self, path: Path) -> int | None:
        """1-based line of the deepest element of `path` present in the file."""
        node, line = self.tree, 1 if self.tree is not None else None
        for part in path:
            if isinstance(node, CommentedMap) and part in node:
                # A key inherited through a YAML merge (`<<: *anchor`) has no line
                # mark of its own in this map; the map's own line is where it applies.
                if part in node.lc.data:
                    line = node.lc.key(part)[0] + 1
                elif node.lc.line is not None:
                    line = node.lc.line + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line

    def problem(self, path: Path, message: str) -> Problem:
        return Problem(self.file, self.line(path), format_path(path), message)
