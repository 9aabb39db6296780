"""Limits on what a topology file may make the loader do, so hostile input fails fast and cleanly.

A topology file is input from anyone (a colleague's file, a CI artefact, a fuzzer). The
loader must answer every file with a topology or `file:line` problems, never a traceback
or a hang. What could otherwise run away:

- size: ruamel reads about 300 kB/s; files are capped (`MAX_FILE_BYTES`, about 10 times the
  largest alliance a testbed holds) before a byte is parsed.
- nesting: ruamel composes and constructs recursively, so `[[[[...` thousands deep ends
  in RecursionError; our own walk stops at `MAX_DEPTH` (the reference file is 6 deep).
- aliases: ruamel builds an alias as a second reference to the same object, so a
  "billion laughs" file loads into a small graph, but anything that walks it (pydantic,
  error rendering) would visit every expansion: 9 aliases of 9 aliases... 9**9 nodes. The
  expanded size is measured on the graph (each shared object once, so in time linear in the
  file) before pydantic sees it: at most `MAX_NODES` YAML nodes and `MAX_CHARS` characters of
  scalars after expansion. A collection that contains itself (`&a [*a]`) is refused too.
- problems: a file of 100 000 wrong items is reported by its first `MAX_PROBLEMS`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any

MAX_FILE_BYTES = 1 << 20  # 1 MiB; the reference alliance is 33 kB, a full 1296-host testbed ~250 kB
MAX_DEPTH = 32  # collections inside collections; the reference file: 6
MAX_NODES = 100_000  # YAML nodes (keys, values, items) after aliases are expanded; the reference: ~3 600
MAX_CHARS = 8 << 20  # characters of scalars after aliases are expanded
MAX_PROBLEMS = 200  # problems listed; the rest are counted


def _is_collection(obj: Any) -> bool:
    return isinstance(obj, (Mapping, Set)) or (isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)))


def _children(obj: Any):
    """(path part, child) of a collection: a mapping's keys and values, a sequence's or set's items."""
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield k, k
            yield k, v
    elif isinstance(obj, Set):
        for item in obj:
            yield item, item
    else:
        yield from enumerate(obj)


def _chars(obj: Any) -> int:
    if isinstance(obj, (str, bytes)):
        return len(obj)
    value = getattr(obj, "value", None)  # ruamel's TaggedScalar (a local tag on a scalar)
    return len(value) if isinstance(value, (str, bytes)) else 0


class Exceeded(Exception):
    """The tree breaks a limit; `path` is where (for file:line), `message` says which limit."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


def measure(tree: Any) -> tuple[int, int, int]:
    """(nodes, characters, depth) of `tree` with every alias expanded; raises Exceeded.

    Iterative depth-first walk; an object reached again (an alias) adds its recorded
    totals instead of being walked again, so the cost is that of the file, not of
    its expansion.
    """
    if not _is_collection(tree):
        return 1, _chars(tree), 0
    done: dict[int, tuple[int, int, int]] = {}
    on_path: set[int] = set()
    # frames: [object, its children iterator, nodes, chars, depth below, path]
    stack: list[list] = [[tree, _children(tree), 1, 0, 0, ()]]
    on_path.add(id(tree))
    while stack:
        frame = stack[-1]
        obj, it, _, _, _, path = frame
        for part, child in it:
            here = (*path, part)
            if _is_collection(child):
                cid = id(child)
                if cid in on_path:
                    raise Exceeded(here, "an alias refers to a collection that contains it (a loop)")
                if cid in done:
                    n, c, d = done[cid]
                else:
                    if len(here) > MAX_DEPTH:
                        raise Exceeded(here, f"nested more than {MAX_DEPTH} levels deep")
                    on_path.add(cid)
                    stack.append([child, _children(child), 1, 0, 0, here])
                    break
                if len(here) + d > MAX_DEPTH:
                    raise Exceeded(here, f"nested more than {MAX_DEPTH} levels deep (through aliases)")
            else:
                n, c, d = 1, _chars(child), -1
            _add(frame, n, c, d)
        else:
            stack.pop()
            on_path.discard(id(obj))
            totals = (frame[2], frame[3], frame[4])
            done[id(obj)] = totals
            if stack:
                _add(stack[-1], *totals)
    return done[id(tree)]


def _add(frame: list, nodes: int, chars: int, depth: int) -> None:
    frame[2] += nodes
    frame[3] += chars
    frame[4] = max(frame[4], depth + 1)
    if frame[2] > MAX_NODES:
        raise Exceeded(frame[5], f"more than {MAX_NODES} YAML nodes here once aliases are expanded "
                                 "(an alias bomb?)")
    if frame[3] > MAX_CHARS:
        raise Exceeded(frame[5], f"more than {MAX_CHARS >> 20} MiB of text here once aliases are expanded "
                                 "(an alias bomb?)")
