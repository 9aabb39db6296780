"""Layers point one way: a module never imports a higher layer, not even lazily inside a function.

model (topology, kinds) <- pure rule compilation (openflow, slicing) <- drivers
(impair, images, platform) <- engine <- checks/probe/workloads <- runner/report <- cli.
Every `import` statement anywhere in a module counts (module level or inside a
function), because a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# (rank, module prefix). Same rank may import each other; lower never imports higher.
LAYERS: list[tuple[int, str]] = [
    (0, "testbed.errors"), (0, "testbed.units"), (0, "testbed.naming"), (0, "testbed.events"), (0, "testbed.netdev"),
    (0, "traffic"),
    (1, "testbed.kinds"), (1, "testbed.services"),
    (2, "testbed.topology"),
    (3, "testbed.openflow"),
    (4, "testbed.slicing"), (4, "testbed.ran"), (4, "testbed.verify"),
    (5, "controllers"), (5, "testbed.impair"), (5, "testbed.images"), (5, "testbed.platform"),
    (6, "testbed.engine"),
    (7, "testbed.checks"), (7, "testbed.probe"), (7, "testbed.workloads"),
    (8, "testbed.report"), (8, "testbed.runner"),
    (9, "testbed.cli"), (9, "testbed"),  # the package's lazy public API sits on top
]


def rank(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, rank): the longest prefix wins
    for r, prefix in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), r)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement in the file, at any depth."""
    mod = module_name(path)
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this package
                base = mod.split(".")[: len(mod.split(".")) - node.level + (1 if path.name == "__init__.py" else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # `from testbed import naming` imports the submodule testbed.naming
            for a in node.names:
                sub = f"{name}.{a.name}"
                if (ROOT / (sub.replace(".", "/") + ".py")).exists() or (ROOT / sub.replace(".", "/")).is_dir():
                    out.append((node.lineno, sub))
    return out


def sources() -> list[Path]:
    return sorted(p for d in ("testbed", "controllers", "traffic") for p in (ROOT / d).rglob("*.py"))


def test_every_source_module_has_a_layer():
    assert [module_name(p) for p in sources() if rank(module_name(p)) is None] == []


@pytest.mark.parametrize("path", sources(), ids=lambda p: module_name(p))
def test_no_import_of_a_higher_layer(path: Path):
    mine = rank(module_name(path))
    upward = []
    for line, name in imports(path):
        theirs = rank(name)
        if theirs is None or name == "testbed":  # third-party, or the bare package (re-exports only)
            continue
        if theirs > mine:
            upward.append(f"{path.relative_to(ROOT)}:{line} imports {name} (layer {theirs} > {mine})")
    assert upward == []


def test_the_check_catches_an_upward_import(tmp_path):
    """The checker itself: a lazy import of the engine inside a topology function is found."""
    fake = ROOT / "testbed" / "topology" / "_layer_probe_tmp.py"
    fake.write_text("def f():\n    from testbed.engine.testbed import Testbed\n    return Testbed\n")
    try:
        found = [(n, rank(n)) for _, n in imports(fake)]
    finally:
        fake.unlink()
    assert ("testbed.engine.testbed", 6) in found and rank("testbed.topology._layer_probe_tmp") == 2
