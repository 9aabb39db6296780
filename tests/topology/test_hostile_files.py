"""Regression tests for what fuzzing found in the loader (tests/topology/test_fuzz_loader.py).

Each file below once crashed `testbed validate` with a traceback, hung it, or was read
wrongly; each must now give `file:line` problems (or load, where YAML allows it), fast.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from testbed.cli.main import cli
from testbed.errors import TopologyError
from testbed.topology import bounds
from testbed.topology.loader import load

REPO = Path(__file__).resolve().parents[2]
MINIMAL_TEXT = (REPO / "topologies" / "minimal.yaml").read_text()


def problems_of(path: Path, within_s: float = 5.0) -> list[str]:
    t0 = time.monotonic()
    with pytest.raises(TopologyError) as info:
        load(path)
    assert time.monotonic() - t0 < within_s
    return [str(p) for p in info.value.problems]


def write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "topo.yaml"
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def line_of(text: str, fragment: str) -> int:
    """1-based line of the first line holding `fragment`."""
    return next(i for i, ln in enumerate(text.splitlines(), 1) if fragment in ln)


def with_link_value(key: str, value: str) -> str:
    return MINIMAL_TEXT.replace("{endpoints: [emr, core]}", f"{{endpoints: [emr, core], {key}: {value}}}", 1)


# -- nesting: RecursionError before, and ruamel's scanner is quadratic in flow depth --------------
@pytest.mark.parametrize("depth", [400, 100_000])
def test_deep_flow_nesting_is_a_located_problem(tmp_path, depth):
    path = write(tmp_path, "name: x\nnodes: " + "[" * depth + "]" * depth + "\n")
    assert problems_of(path, within_s=2) == [f"{path}:2: nested more than {bounds.MAX_DEPTH} levels deep"]


def test_deep_block_nesting_is_a_located_problem(tmp_path):
    text = "name: x\nnodes:\n" + "".join(" " * i + "-\n" for i in range(1, 400)) + " " * 400 + "- x\n"
    [problem] = problems_of(write(tmp_path, text))
    assert f"nested more than {bounds.MAX_DEPTH} levels deep" in problem and ":3" in problem.split()[0]


# -- values ruamel cannot construct: ValueError tracebacks before ------------------------------------------
def test_integer_of_5000_digits(tmp_path):
    path = write(tmp_path, MINIMAL_TEXT.replace("fiveqi: 7", "fiveqi: " + "9" * 5000))
    [problem] = problems_of(path)
    line = line_of(MINIMAL_TEXT, "fiveqi: 7")
    assert problem.startswith(f"{path}:{line}: YAML: cannot read this value") and "4300 digits" in problem


@pytest.mark.parametrize(("text", "field"), [
    (with_link_value("bw", "0x" + "f" * 5000), "bw"),  # parse_rate: float() OverflowError
    (MINIMAL_TEXT.replace("fiveqi: 7", "fiveqi: 0x" + "f" * 5000), "fiveqi"),  # validate.py: str() of it
])
def test_huge_hex_integer(tmp_path, text, field):
    path = write(tmp_path, text)
    [problem] = problems_of(path)
    assert "integer too large (more than 64 bits)" in problem and problem.startswith(f"{path}:")


def test_impossible_timestamp(tmp_path):
    path = write(tmp_path, MINIMAL_TEXT.replace("description: One clinic", "description: 2001-13-45\nx: y", 1))
    [problem] = problems_of(path)
    line = line_of(MINIMAL_TEXT, "description: One clinic")
    assert problem == f"{path}:{line}: YAML: cannot read this value (month must be in 1..12)"


@pytest.mark.parametrize("value", ["9" * 400 + "ms", ".nan", ".inf", "1e400"])
def test_durations_must_be_finite(tmp_path, value):
    """400 digits of ms overflowed to inf, and .nan / .inf were accepted as delays."""
    path = write(tmp_path, with_link_value("delay", value))
    line = line_of(MINIMAL_TEXT, "{endpoints: [emr, core]}")
    assert f"{path}:{line} links[0].delay: duration must be a finite number" in problems_of(path)


def test_size_of_400_digits(tmp_path):
    """parse_size: int(inf) raised OverflowError."""
    path = write(tmp_path, MINIMAL_TEXT.replace("{name: emr, kind: server,", "{name: emr, memory: " + "9" * 400
                                                + "g, kind: server,", 1))
    assert any("nodes[1].memory: size too large" in p for p in problems_of(path))


def test_sequence_under_an_unknown_tag(tmp_path):
    """Its items carry no line marks: Source.line raised TypeError."""
    path = write(tmp_path, MINIMAL_TEXT.replace("sessions: [{slice: clinical}]",
                                                "sessions: !!python/object/apply:os.system [echo pwned]", 1))
    line = line_of(MINIMAL_TEXT, "sessions: [{slice: clinical}]")
    assert problems_of(path) == [f"{path}:{line} ran.ues[0].sessions[0]: Input should be a valid dictionary or "
                                 "instance of PduSession"]


# -- size -----------------------------------------------------------------------------------------------------
def test_endless_device_is_read_up_to_the_limit():
    problems = problems_of(Path("/dev/zero"))
    assert problems == [f"/dev/zero:1: file larger than 1 MiB, the limit for a topology file; nothing parsed"]


def test_file_over_the_limit_names_the_line_where_it_crosses(tmp_path):
    line = "# " + "x" * 97 + "\n"  # 100 bytes
    path = write(tmp_path, MINIMAL_TEXT + line * (bounds.MAX_FILE_BYTES // 100))
    [problem] = problems_of(path, within_s=1)
    assert "the limit for a topology file" in problem
    assert int(problem.split()[0].rsplit(":", 2)[1]) > 10_000


def test_many_small_items_stop_at_the_node_limit(tmp_path, monkeypatch):
    """The composer stops at the limit instead of reading on (a megabyte of `a, ` is 300 000 nodes);
    with the real limit this takes seconds, so the test lowers it."""
    monkeypatch.setattr(bounds, "MAX_NODES", 2000)
    path = write(tmp_path, "name: x\nnodes:\n" + "  - a\n" * 3000)
    assert problems_of(path, within_s=2) == [f"{path}:1998: more than 2000 YAML nodes in the file"]  # 5 nodes before the items


def test_problems_are_capped(tmp_path):
    path = write(tmp_path, "name: x\nnodes:\n" + "- 1\n" * 5000)
    problems = problems_of(path)
    assert len(problems) == bounds.MAX_PROBLEMS + 1 and problems[-1] == f"{path}: ... and 4800 more problem(s)"


# -- aliases ----------------------------------------------------------------------------------------------------
BOMB = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))


def test_alias_bomb_is_refused_before_anything_walks_it(tmp_path):
    path = write(tmp_path, "x-bomb:\n  l0: &l0 x\n" + "".join("  " + ln + "\n" for ln in BOMB.splitlines())
                 + MINIMAL_TEXT.replace("slice: clinical, duration", "slice: clinical, bomb: *l9, duration"))
    [problem] = problems_of(path, within_s=1)
    assert problem == (f"{path}:8 x-bomb.l6: more than {bounds.MAX_NODES} YAML nodes here once aliases are "
                       "expanded (an alias bomb?)")


def test_text_bomb(tmp_path):
    path = write(tmp_path, "s: &s '" + "x" * 100_000 + "'\nname: x\nnodes: [" + "*s, " * 100 + "]\n")
    [problem] = problems_of(path, within_s=1)
    assert "MiB of text here once aliases are expanded" in problem and problem.startswith(f"{path}:3 nodes:")


def test_alias_loop(tmp_path):
    path = write(tmp_path, "name: x\nnodes: [&n {name: h, kind: host, x: *n}]\n")
    [problem] = problems_of(path)
    assert "loop" in problem and problem.startswith(f"{path}:2 nodes[0].x")


# -- encodings ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_unicode_with_a_byte_order_mark_loads(tmp_path, encoding):
    data = MINIMAL_TEXT.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    assert load(write(tmp_path, data)).name == "minimal"


def test_utf16_without_a_byte_order_mark_is_located(tmp_path):
    path = write(tmp_path, MINIMAL_TEXT.encode("utf-16-le"))
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:1: YAML syntax: unacceptable character #x0000") and "UTF-16" in problem


def test_invalid_utf8_is_located(tmp_path):
    data = MINIMAL_TEXT.encode().replace(b"One clinic", b"One \xc3 clinic")
    path = write(tmp_path, data)
    line, offset = line_of(MINIMAL_TEXT, "One clinic"), data.index(b"\xc3")
    assert problems_of(path) == [f"{path}:{line}: not UTF-8 text (byte 0xc3 at offset {offset})"]


def test_duplicate_anchor_prints_no_python_warning(tmp_path):
    path = write(tmp_path, MINIMAL_TEXT.replace("{name: core, kind: switch, site: xch-dc}",
                                                "{name: &a core, kind: &a switch, site: xch-dc}"))
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 0 and "Warning" not in r.output, r.output


# -- what reaches the terminal ------------------------------------------------------------------------------
def test_control_characters_in_a_file_print_as_escapes(tmp_path):
    """A key holding ESC sequences cleared the screen and retitled the terminal of `testbed validate`;
    a key holding NEL (\\x85) split one problem over two lines."""
    path = write(tmp_path, 'name: x\nnodes: [{name: h, kind: host, "\\e[2J\\e]0;pwned\\a": 1, "a\\x85b": 2}]\n')
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 2
    assert "nodes[0].\\x1b[2J\\x1b]0;pwned\\x07: unknown key" in r.output
    assert "nodes[0].a\\x85b: unknown key" in r.output
    assert all(ch == "\n" or ch.isprintable() for ch in r.output), r.output


@pytest.mark.parametrize("value", ["true", "5", "0b101"])
def test_addresses_are_text(tmp_path, value):
    """pydantic read `pool: true` as 0.0.0.1/32 (and Python warns that int subclasses will stop working there)."""
    path = write(tmp_path, MINIMAL_TEXT.replace("addressing: {pool: 10.77.0.0/24}", f"addressing: {{pool: {value}}}"))
    [problem] = problems_of(path)
    assert "defaults.addressing.pool: expected an address as text" in problem
