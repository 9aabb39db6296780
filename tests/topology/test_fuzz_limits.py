"""Files built to exhaust the loader never crash it, hang it or fill memory: they are cut at its bounds.

Deep nesting, alias bombs (billion laughs, merge-key loops), huge files and a
file that never ends (/dev/zero) go through `testbed validate` in-process, like
the mutated files of test_fuzz_loader.py; each must answer within seconds, and
beyond testbed.topology.bounds with the problem that names the limit. The
volume is printed in pytest's summary ("fuzz volume"); TESTBED_FUZZ_SCALE=10
multiplies the examples.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.fuzzing import assert_clean_validate, invoke, report_volume
from tests.topology.fuzz_files import MINIMAL_TEXT, fuzz, validate_bytes
from testbed.topology import bounds


@pytest.fixture(scope="module", autouse=True)
def _volume(request):
    yield
    report_volume(request)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# -- deep nesting --------------------------------------------------------------------------------------
def nested(depth: int, style: str) -> str:
    if style == "flow-seq":
        return "[" * depth + "x" + "]" * depth
    if style == "flow-map":
        return "{a: " * depth + "x" + "}" * depth
    if style == "flow-mixed":
        return "".join("[" if i % 2 else "{a: " for i in range(depth)) + "x" + "".join(
            "]" if i % 2 else "}" for i in reversed(range(depth)))
    if style == "block-seq":
        return "\n" + "".join(" " * (i + 2) + "-\n" for i in range(depth - 1)) + " " * (depth + 1) + "- x"
    return "\n" + "".join(" " * (i + 2) + f"k{i}:\n" for i in range(depth - 1)) + " " * (depth + 1) + "k: x"


@fuzz(50)
@given(st.integers(1, 6000), st.sampled_from(["flow-seq", "flow-map", "flow-mixed", "block-seq", "block-map"]),
       st.sampled_from(["nodes", "description", "defaults", "x-extra", "controller"]))
def test_deep_nesting(workdir, depth, style, field):
    assume(style.startswith("flow") or depth <= 1200)  # a block file of depth d is d**2/2 bytes
    text = MINIMAL_TEXT.replace("\nnodes:\n", f"\n{field}: {nested(depth, style)}\nnodes:\n", 1) \
        if field != "nodes" else MINIMAL_TEXT.split("\nnodes:\n")[0] + f"\nnodes: {nested(depth, style)}\n"
    result, took = validate_bytes(workdir, text.encode(), "deep files")
    assert took < 10, f"{took:.1f}s for depth {depth}"
    if depth > bounds.MAX_DEPTH + 2:
        assert f"nested more than {bounds.MAX_DEPTH} levels" in result.output, result.output[-500:]


# -- alias bombs ---------------------------------------------------------------------------------------------
def bomb(width: int, levels: int, leaf: str, kind: str) -> str:
    out = [f"l0: &l0 {leaf}"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*l{i - 1}"] * width)
        out.append(f"l{i}: &l{i} " + ("[" + refs + "]" if kind == "seq" else
                                        "{" + ", ".join(f"k{j}: *l{i - 1}" for j in range(width)) + "}"))
    return "\n".join(out) + "\n"


@fuzz(50)
@given(st.integers(2, 12), st.integers(1, 14), st.sampled_from(["x", "'" + "y" * 500 + "'", "[a, b]", "{a: b}"]),
       st.sampled_from(["seq", "map"]),
       st.sampled_from(["nodes", "description", "slices[0].members", "workloads[0].extra", "defaults", "top-level"]))
def test_alias_bombs(workdir, width, levels, leaf, kind, target):
    top = f"l{levels}"
    text = bomb(width, levels, leaf, kind).replace("\nl", "\n  l").replace("l0:", "  l0:", 1)
    text = "x-anchors:\n" + text
    body = MINIMAL_TEXT
    if target == "nodes":
        body = body.split("\nnodes:\n")[0] + f"\nnodes: *{top}\n"
    elif target == "description":
        body = body.replace("description: One clinic", f"description: *{top}\nx-d: One clinic", 1)
    elif target == "slices[0].members":
        body = body.replace("members: [dr-tablet-01]", f"members: *{top}", 1)
    elif target == "workloads[0].extra":
        body = body.replace("slice: clinical, duration", f"slice: clinical, bomb: *{top}, duration", 1)
    elif target == "defaults":
        body = body.replace("addressing: {pool: 10.77.0.0/24}", f"addressing: *{top}", 1)
    else:
        body = body + f"x-top: *{top}\n"
    expanded = width ** levels * (500 if "y" in leaf else 1)
    result, took = validate_bytes(workdir, (text + body).encode(), "alias bombs")
    assert took < 10, f"{took:.1f}s for {width}**{levels}"
    if expanded > 10 * max(bounds.MAX_NODES, bounds.MAX_CHARS):
        assert "aliases are expanded" in result.output, result.output[-800:]


@pytest.mark.parametrize("text", [
    "a: &a [*a, *a]\nname: x\nnodes: [{name: h, kind: host}]\n",
    "a: &a {b: *a}\nname: x\nnodes: [{name: h, kind: host}]\n",
    "name: x\nnodes: [&n {name: h, kind: host, x: *n}]\n",
    "a: &a {k: v}\nb: &b {<<: [*a, *a, *a, *a]}\nc: &c {<<: [*b, *b, *b, *b]}\nname: x\nnodes: [{<<: *c, name: h, kind: host}]\n",
    "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b {? *a : 1}\nname: x\nnodes: [{name: h, kind: host}]\n",
    "a: &a [x]\nb: &b [*a, *a]\nc: &c {? *b : 1, ? [*b] : 2}\nname: x\nnodes: [{name: h, kind: host}]\n",
])
def test_alias_loops_and_merges(workdir, text):
    validate_bytes(workdir, text.encode(), "alias bombs")


# -- huge files -----------------------------------------------------------------------------------------------
@fuzz(8)
@given(st.sampled_from(["comment", "scalar", "nodes", "links", "blank"]),
       st.sampled_from([-4096, -1, 0, 1, 4096, 1 << 20]))
def test_huge_files(workdir, filler, offset):
    target = bounds.MAX_FILE_BYTES + offset
    body = MINIMAL_TEXT
    unit = {"comment": "# " + "c" * 78 + "\n", "scalar": "y" * 80, "blank": "\n" * 80,
            "nodes": "  - {name: h0000, kind: host}\n", "links": "  - {endpoints: [h0000, clinic-sw]}\n"}[filler]
    room = max(0, target - len(body) - 40)
    pad = (unit * (room // len(unit) + 1))[:room]
    if filler == "scalar":
        text = body.replace("description: ", f"description: {pad} ", 1)
    elif filler in ("nodes", "links"):
        key = "\nnodes:\n" if filler == "nodes" else "\nlinks:\n"
        text = body.replace(key, key + pad[: pad.rfind("\n") + 1], 1)
    else:
        text = body + pad
    data = text.encode()
    result, took = validate_bytes(workdir, data, "huge files")
    assert took < 25, f"{took:.1f}s for {len(data)} bytes"  # ruamel reads ~300 kB/s; a loaded CI box less
    if len(data) > bounds.MAX_FILE_BYTES:
        assert "the limit for a topology file" in result.output, result.output[-500:]


def test_endless_file_is_cut_at_the_limit():
    """A device that never ends (/dev/zero) is read up to the limit, not to the end of memory."""
    result, took = invoke(["validate", "/dev/zero"], "huge files")
    assert_clean_validate(result, "/dev/zero")
    assert result.exit_code == 2 and "the limit for a topology file" in result.output
    assert took < 5
