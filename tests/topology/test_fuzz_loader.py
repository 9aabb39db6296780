"""Hostile topology files never crash the loader: a topology, or `file:line` problems with exit 2.

Property-based (hypothesis): every file below goes through `testbed validate` in-process
(click's CliRunner) under an alarm, and must give exit 0, or exit 2 with every problem
located as `FILE:LINE`, never a traceback or a hang. The files: odd encodings (UTF-16/32,
BOMs, NUL bytes, invalid UTF-8), odd types and tags (lists for maps, numbers as names,
booleans, null, timestamps, !!binary, !!python/object), and the project's own
topologies/*.yaml mutated in structure and in text. Files built to exhaust the loader
(deep nesting, alias bombs, huge files) are in test_fuzz_limits.py.

Bounded for CI: `max_examples` per property, about 25 s in all on a 2-core machine; the
volume (files tried, seconds) is printed in pytest's summary ("fuzz volume"); TESTBED_FUZZ_SCALE=10
multiplies the examples for a longer hunt.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tests.fuzzing import report_volume
from tests.topology.fuzz_files import MINIMAL_TEXT, TOPOLOGIES, fuzz, validate_bytes


def _plain(path: Path):
    return YAML(typ="safe", pure=True).load(path.read_text())


BASES = {p.name: _plain(p) for p in TOPOLOGIES}
TEXTS = {p.name: p.read_text() for p in TOPOLOGIES}
SMALL = "minimal.yaml"  # most examples mutate the small file: ruamel reads the 33 kB reference in ~0.15 s


@pytest.fixture(scope="module", autouse=True)
def _volume(request):
    yield
    report_volume(request)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# -- values a YAML file can hold ---------------------------------------------------------
# Scalars as YAML text: every odd type and tag a hostile file may carry.
ODD_SCALARS = [
    "null", "~", "''", "true", "false", "yes", "No", "on", "0", "-1", "007", "0x1F", "0o17", "0b101", "1_000",
    "1e400", "-1e400", ".inf", "-.inf", ".nan", "3.5", "12:30:00", "190:20:30",
    "2001-12-14t21:59:43.10-05:00", "2002-12-14", "2001-13-45", "2001-02-30 25:61:61",
    "!!binary aGVsbG8=", "!!binary '***'", "!!timestamp 2001-12-14", "!!timestamp nope",
    "!!python/object:os.system {}", "!!python/object/apply:os.system [echo pwned]", "!!python/name:os.system ''",
    "!!python/tuple [1, 2]", "!!set {a, b}", "!!omap [a: 1, b: 2]", "!!pairs [a: 1, a: 2]",
    "!!int nope", "!!int 12", "!!float nope", "!!bool maybe", "!!null x", "!!str 5", "!!map {}", "!!seq []",
    "!foo bar", "!<tag:example.com,2000:app/x> 1", "!!binary ''", "&anchor value", "*undefined",
    "\"\\ud800\"", "\"\\x00\"", "\"\\0\\a\\e\"", "\"\\u202eevil\"", "'\u202e'", "\"\\U0001F600\"",
    "9" * 5000, "-" + "9" * 4400, "0x" + "f" * 5000, "1." + "0" * 5000, "'" + "x" * 3000 + "'",
    "[]", "{}", "[1, [2, [3]]]", "{a: {b: {c: d}}}", "[null, true, 1.5]", "{? [a, b] : c}", "{[1]: x}",
    "\"tb0000-eth0\"", "'$(reboot)'", "'; rm -rf /'", "'../../etc/passwd'", "'[/]'", "'[red]x[/red]'",
]

# The same as Python values, for structure mutations dumped by ruamel.
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.text(max_size=300),
    st.binary(max_size=20), st.dates(), st.datetimes(), st.just(""), st.just("x" * 1000),
    st.sampled_from(["switch", "host", "emr", "core", "clinic-sw", "kind:ue", "site:xch-dc", "10ms", "1%",
                     "100Mbit", "-5ms", "0ms", "1e9s", "101%", "0Mbit", "1.2.3.4", "10.77.0.0/33", "::1"]),
)

def _collections_of(inner):
    return st.one_of(st.lists(inner, max_size=4),
                     st.dictionaries(st.one_of(st.text(max_size=10), st.integers(), st.booleans()), inner, max_size=4))


RECURSIVE = st.recursive(ODD_VALUES, _collections_of, max_leaves=12)


# -- structure of a valid file --------------------------------------------------------------
def paths(tree, prefix=()):
    """Every path to a value in a plain tree (dict keys, list indices)."""
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from paths(v, (*prefix, i))


def get(tree, path):
    for part in path:
        tree = tree[part]
    return tree


def copy(tree):
    if isinstance(tree, dict):
        return {k: copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [copy(v) for v in tree]
    return tree


@st.composite
def mutated_tree(draw, base: str | None = None):
    """A valid topology (as Python data) with 1-4 structural mutations."""
    name = base or draw(st.sampled_from(sorted(BASES)))
    tree = copy(BASES[name])
    for _ in range(draw(st.integers(1, 4))):
        all_paths = list(paths(tree))
        path = draw(st.sampled_from(all_paths))
        if not path:
            continue
        parent, key = get(tree, path[:-1]), path[-1]
        value = parent[key]
        op = draw(st.sampled_from(["delete", "odd", "recursive", "rename", "wrap", "unwrap", "dup", "swap_type",
                                   "other_name", "numberify", "listify_map"]))
        if op == "delete":
            del parent[key]
        elif op == "odd":
            parent[key] = draw(ODD_VALUES)
        elif op == "recursive":
            parent[key] = draw(RECURSIVE)
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from([str(key).upper(), str(key) + "s", str(key)[:-1], "_" + str(key), 5, True,
                                        None, "name", "kind", "nodes", "links", "endpoints"]))
            parent.pop(key)
            parent[new] = value
        elif op == "wrap":
            parent[key] = [value]
        elif op == "unwrap" and isinstance(value, list) and value:
            parent[key] = value[0]
        elif op == "dup" and isinstance(parent, list):
            parent.insert(key, copy(value))
        elif op == "swap_type":
            parent[key] = (list(value.values()) if isinstance(value, dict) else
                           {str(i): v for i, v in enumerate(value)} if isinstance(value, list) else
                           str(value) if not isinstance(value, str) else [value])
        elif op == "other_name":
            nodes = tree.get("nodes")  # an earlier mutation may have made it anything, None or a number too
            names = [n["name"] for n in (nodes if isinstance(nodes, list) else [])
                     if isinstance(n, dict) and isinstance(n.get("name"), str)]
            if names:
                parent[key] = draw(st.sampled_from(names))
        elif op == "numberify":
            parent[key] = draw(st.sampled_from([0, 1, -1, 1.5, 10**30, float("nan"), float("inf")]))
        elif op == "listify_map" and isinstance(value, dict):
            parent[key] = [[k, v] for k, v in value.items()]
    return name, tree


def dump_yaml(tree, flow: bool) -> str:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = flow
    y.allow_unicode = True
    buf = io.StringIO()
    y.dump(tree, buf)
    return buf.getvalue()


def dump(tree, how: str) -> bytes:
    if how == "json":
        try:
            return json.dumps(tree, indent=1, default=str, allow_nan=True).encode()
        except (TypeError, ValueError):  # keys JSON cannot hold: YAML instead
            how = "block"
    return dump_yaml(tree, how == "flow").encode("utf-8", "surrogatepass")


@fuzz(150)
@given(mutated_tree(SMALL), st.sampled_from(["block", "block", "flow", "json"]))
def test_mutated_topologies(workdir, mt, how):
    _, tree = mt
    validate_bytes(workdir, dump(tree, how), "mutated files")


@fuzz(12)
@given(mutated_tree("xiangtan-alliance.yaml"), st.sampled_from(["block", "json"]))
def test_mutated_reference_topology(workdir, mt, how):
    """The reference file has a workload of every type, probes, RAN sessions: fewer, slower examples."""
    _, tree = mt
    validate_bytes(workdir, dump(tree, how), "mutated files")


# -- text of a valid file ----------------------------------------------------------------------
SPECIALS = ["&", "*", "!", ":", "- ", "[", "]", "{", "}", "'", '"', "|", ">", "%", "@", "`", "#", ",", "?",
            "\t", "\0", "\x1b[31m", "\r", "\u2028", "\ufeff", "---\n", "...\n", "<<: ", "&a ", "*a", "!!python/object ",
            ": :", "- - -", "\\", "\x85", "\ud800"]


@st.composite
def mutated_text(draw, name: str):
    lines = TEXTS[name].splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 5))):
        if not lines:
            lines = ["\n"]
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "dup", "swap", "indent", "dedent", "tab", "insert", "replace_value",
                                   "truncate", "odd_line", "cut"]))
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, line)
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 4)) + line
        elif op == "dedent":
            lines[i] = line.lstrip(" ")
        elif op == "tab":
            lines[i] = "\t" + line
        elif op == "insert":
            pos = draw(st.integers(0, len(line)))
            lines[i] = line[:pos] + draw(st.sampled_from(SPECIALS)) + line[pos:]
        elif op == "replace_value":
            matches = list(re.finditer(r"(?<=: )[^,{}\[\]\n#]+", line))
            if matches:
                m = draw(st.sampled_from(matches))
                lines[i] = line[:m.start()] + draw(st.sampled_from(ODD_SCALARS)) + line[m.end():]
        elif op == "truncate":
            lines = lines[:i + 1]
            lines[-1] = line[:draw(st.integers(0, len(line)))]
        elif op == "odd_line":
            indent = " " * draw(st.sampled_from([0, 2, 4, 6]))
            lines.insert(i, f"{indent}{draw(st.sampled_from(['x', 'name', 'nodes', 'bw', '- name']))}: "
                            f"{draw(st.sampled_from(ODD_SCALARS))}\n")
        elif op == "cut":
            pos = draw(st.integers(0, len(line)))
            lines[i] = line[:pos] + line[pos + draw(st.integers(1, 20)):]
    return "".join(lines)


@fuzz(150)
@given(mutated_text(SMALL))
def test_mutated_text(workdir, text):
    validate_bytes(workdir, text.encode("utf-8", "surrogatepass"), "mutated texts")


@fuzz(12)
@given(mutated_text("xiangtan-alliance.yaml"))
def test_mutated_reference_text(workdir, text):
    validate_bytes(workdir, text.encode("utf-8", "surrogatepass"), "mutated texts")


# -- odd types anywhere ---------------------------------------------------------------------------
@fuzz(80)
@given(st.sampled_from(["name", "description", "nodes", "links", "sites", "slices", "defaults", "controller",
                        "ran", "workloads", "probes", "faults", "nodes[0].name", "nodes[0].kind", "nodes[1].services",
                        "links[0].endpoints", "links[0].bw", "links[0].delay", "slices[0].members",
                        "slices[0].fiveqi", "slices[0].sd", "workloads[0].duration", "workloads[0].slo",
                        "defaults.addressing.pool", "ran.ues[0].sessions"]),
       st.sampled_from(ODD_SCALARS))
def test_odd_scalar_at_a_field(workdir, where, scalar):
    tree = copy(BASES[SMALL])
    *parents, last = re.findall(r"[a-z_]+|\[\d+\]", where)
    node = tree
    for part in parents:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    marker = "__ODD__"
    if last.startswith("["):
        node[int(last[1:-1])] = marker
    else:
        node[last] = marker
    text = dump_yaml(tree, flow=False).replace(f"'{marker}'", marker).replace(marker, scalar)
    validate_bytes(workdir, text.encode("utf-8", "surrogatepass"), "odd-type files")


@fuzz(40)
@given(st.one_of(RECURSIVE, st.sampled_from(ODD_SCALARS).map(lambda s: ("raw", s))))
def test_odd_whole_documents(workdir, doc):
    text = doc[1] + "\n" if isinstance(doc, tuple) else dump_yaml(doc, flow=False)
    validate_bytes(workdir, text.encode("utf-8", "surrogatepass"), "odd-type files")


@pytest.mark.parametrize("text", [
    "", "\n", "# only a comment\n", "---\n", "...\n", "%YAML 1.1\n---\nname: x\n", "%YAML 9.9\n---\n{}\n",
    "%TAG ! tag:example.com,2000:\n--- !x {name: a}\n", "--- !!python/object:os.system\nname: x\n",
    "name: a\n---\nname: b\n", "{name: a, nodes: [{name: h, kind: host}]}\n", "[" * 40, "]" * 40, "{" * 40,
    "? " * 200 + "x\n", "- " * 200 + "x\n", "&a a: *a\n", "a: &a [*a]\n", "a: &a {b: *a}\nname: x\nnodes: *a\n",
    "name: x\nnodes: &n [*n]\n", "<<: *nope\n", "<<: [1, 2]\n", "name: x\n<<: {name: y}\nnodes: [{name: h, kind: host}]\n",
])
def test_odd_documents(workdir, text):
    validate_bytes(workdir, text.encode(), "odd-type files")


# -- encodings ----------------------------------------------------------------------------------------
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
             "latin-1", "cp1252"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_text_with_a_byte_order_mark_is_read(workdir, encoding):
    """YAML allows UTF-16/32 with a BOM: the minimal topology in each is valid as is."""
    result, _ = validate_bytes(workdir, MINIMAL_TEXT.replace("One clinic", "Une clinique à 湘潭 €").encode(encoding), "encoded files")
    assert result.exit_code == 0, result.output


@fuzz(60)
@given(st.sampled_from(ENCODINGS), st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(
    [b"\xff", b"\xfe", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\x00\x00", b"\x80",
     b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xe2\x80", b"\x1b", b"\x7f", b"\r", b"\x85"])), max_size=4),
       st.booleans())
def test_odd_encodings(workdir, encoding, inserts, non_ascii):
    text = MINIMAL_TEXT.replace("One clinic", "Une clinique à 湘潭 €") if non_ascii else MINIMAL_TEXT
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode(encoding, errors="replace")
    for pos, raw in inserts:
        pos %= len(data) + 1
        data = data[:pos] + raw + data[pos:]
    validate_bytes(workdir, data, "encoded files")
