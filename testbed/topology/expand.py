"""Site templates and ranges, expanded on the raw YAML tree before the model sees the file.

A file with `templates:` (or a site entry with a range name, `template`, `vars` or
`overrides`) is rewritten into the plain file it stands for: every instance of a site
entry becomes a site, and gets its template's nodes, links and UE bindings appended to
`nodes`, `links` and `ran.ues` (instances in file order, items in template order, after
what the file writes itself). Every other part of the file is kept as it is, the very
objects with their comments, so `testbed validate --expand` prints a file a person can read.

The model then checks the expanded tree as if it had been written by hand; `origins`
map each expanded element back to the line that wrote it (the template's, the entry's,
an override's) and the instance, so an error reads
`file:LINE templates.chc.nodes[2].name (in site chc-07): ...`. Expansion is bounded:
at most `ranges.MAX_INSTANCES` instances per file, and the expanded tree may not hold more
YAML nodes or text than a file may (bounds.py); templates cannot nest (a template's items
are nodes, links and UE bindings, never sites), so nothing recurses.
"""
from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import Comment, CommentedMap, CommentedSeq, Format

from testbed.errors import Problem
from testbed.topology import bounds
from testbed.topology.fields import NAME_PATTERN
from testbed.topology.ranges import MAX_INSTANCES, TextError, expand_range, has_range, substitute
from testbed.topology.source import Origin, Source
from testbed.topology.templates import TEMPLATING_KEYS, SiteTemplating, Template

BUILTINS = ("site", "i")  # placeholders every instance has ({i}: only instances of a range)
MERGED = ("link", "uplink")  # an override's mapping here merges key by key into the entry's
# where each template collection goes in the file
TARGETS: dict[str, tuple[str, ...]] = {"nodes": ("nodes",), "links": ("links",), "ues": ("ran", "ues")}

_TEMPLATES = TypeAdapter(dict[str, Template])


@dataclass
class Expanded:
    """The file as if written by hand, where each part of it came from, and what was wrong.

    `problems` stop the load; `unused` (templates no site names) are reported with the
    model's problems: a site that misspells `template` is then said to have an unknown key.
    """

    tree: Any
    origins: dict[tuple, Origin] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unused: list[Problem] = field(default_factory=list)


def is_templated(tree: Any) -> bool:
    """Whether the file uses templates or site ranges at all (if not, it is loaded exactly as before)."""
    if not isinstance(tree, Mapping):
        return False
    if "templates" in tree:
        return True
    sites = tree.get("sites")
    return isinstance(sites, list) and any(_templated_site(s) for s in sites)


def _templated_site(entry: Any) -> bool:
    if not isinstance(entry, Mapping):
        return False
    name = entry.get("name")
    return any(k in entry for k in TEMPLATING_KEYS) or (isinstance(name, str) and ("{" in name or "}" in name))


def expand(tree: Any, src: Source, message: Callable[[dict], str]) -> Expanded:
    """The expanded file; `message` words a pydantic error (the loader's, with its key hints)."""
    if not is_templated(tree):
        return Expanded(tree)
    return _Expander(tree, src, message).run()


class _Abort(Exception):
    """The expansion outgrew a limit: stop at once (the problem is recorded)."""


class _Expander:
    def __init__(self, tree: Mapping, src: Source, message: Callable[[dict], str]) -> None:
        self.raw, self.src, self.message = tree, src, message
        self.out = Expanded(None)
        self.added: dict[str, list] = {coll: [] for coll in TARGETS}
        self.instances = 0
        self.nodes = 0  # YAML nodes made so far, against bounds.MAX_NODES
        self.chars = 0  # characters of text made so far, against bounds.MAX_CHARS
        self.last_of: dict[int, int] = {}  # raw site index -> its last site in the expanded list (comments go there)

    # -- problems --
    def problem(self, path: tuple, message: str, instance: str | None = None) -> None:
        self.out.problems.append(self.src.problem_at(path, instance, message))

    def invalid(self, exc: ValidationError, prefix: tuple) -> None:
        for err in exc.errors(include_url=False):
            self.problem((*prefix, *err["loc"]), self.message(err))

    # -- the whole file --
    def run(self) -> Expanded:
        templates = self.templates()
        if self.out.problems:  # a broken template would only add "unknown template" to every site naming it
            self.out.tree = self.raw
            return self.out
        used: set[str] = set()
        sites = self.raw.get("sites")
        expanded_sites = CommentedSeq()
        if isinstance(sites, list):
            try:
                for j, entry in enumerate(sites):
                    self.site_entry(j, entry, templates, used, expanded_sites)
            except _Abort:
                pass
            _keep_comments(sites, expanded_sites, self.last_of)
        self.out.unused = [self.src.problem_at(("templates", name), None, "no site uses this template")
                           for name in templates if name not in used]
        self.out.tree = self.assemble(expanded_sites if isinstance(sites, list) else sites)
        return self.out

    def templates(self) -> dict[str, Mapping]:
        raw = self.raw.get("templates", {})
        if raw is None:
            raw = {}
        try:
            _TEMPLATES.validate_python(raw)
        except ValidationError as exc:
            self.invalid(exc, ("templates",))
            return {}
        bad = [name for name in raw if not isinstance(name, str) or not _is_name(name)]
        for name in bad:
            self.problem(("templates", name), "a template name is lowercase letters, digits and '-' (like a node name)")
        return {name: body or {} for name, body in raw.items() if name not in bad}

    def assemble(self, sites: Any) -> CommentedMap:
        """The top level of the expanded file: the file's own keys in their order, `templates` gone."""
        top = CommentedMap()
        for key in self.raw:
            if key == "templates":
                continue
            top[key] = sites if key == "sites" else self.raw[key]
        for coll, (*parents, leaf) in TARGETS.items():
            if not self.added[coll]:
                continue
            holder = top
            for part in parents:  # ran: created when the file has none
                if part not in holder:
                    holder[part] = CommentedMap()
                if not isinstance(holder[part], Mapping):
                    self.problem((part,), "must be a mapping to take the templates' UE bindings")
                    break
                holder[part] = _shallow(holder[part], CommentedMap)
                holder = holder[part]
            else:
                self.append(holder, leaf, coll, (*parents, leaf))
        if hasattr(self.raw, Comment.attrib):  # the modeline and the comments between top-level keys
            setattr(top, Comment.attrib, getattr(self.raw, Comment.attrib))
        return _copy_format(self.raw, top)

    def append(self, holder: CommentedMap, leaf: str, coll: str, path: tuple) -> None:
        own = holder.get(leaf)
        if own is None:
            own = CommentedSeq()
        if not isinstance(own, list):
            self.problem(path, f"must be a list to take the templates' {coll}")
            return
        merged = _shallow(own, CommentedSeq)
        for item, origin in self.added[coll]:
            self.out.origins[(*path, len(merged))] = origin
            merged.append(item)
        holder[leaf] = merged

    # -- one site entry --
    def site_entry(self, j: int, entry: Any, templates: dict[str, Mapping], used: set[str],
                   out: CommentedSeq) -> None:
        here = ("sites", j)
        self.last_of[j] = len(out)
        if not _templated_site(entry):
            self.out.origins[("sites", len(out))] = (here, None)
            out.append(entry)
            return
        keys = {k: entry[k] for k in TEMPLATING_KEYS if k in entry}
        try:
            spec = SiteTemplating.model_validate(keys)
        except ValidationError as exc:
            self.invalid(exc, here)
            return
        named = entry.get("name")
        if not isinstance(named, str):
            self.problem(here, "a site needs a `name` (text, or a range like chc-{01..14})")
            return
        try:
            instances = expand_range(named)
        except TextError as exc:
            self.problem((*here, "name"), str(exc))
            return
        self.instances += len(instances)
        if self.instances > MAX_INSTANCES:
            self.problem((*here, "name"), f"more than {MAX_INSTANCES} site instances in one file; "
                                          "a testbed could not hold their nodes anyway")
            raise _Abort
        template = None
        if spec.template is not None:
            template = templates.get(spec.template)
            if template is None:
                known = ", ".join(sorted(templates)) or "none: add a `templates:` entry"
                self.problem((*here, "template"), f"unknown template {spec.template!r} (known: {known})")
                return
            used.add(spec.template)
        names = [name for name, _ in instances]
        values = self.values(here, spec, instances)
        changes = self.overrides(here, spec, names)
        if values is None or changes is None:
            return
        ranged = len(instances) > 1 or instances[0][1] is not None
        for k, (name, _) in enumerate(instances):
            mine = {**values[k], **{v: str(x) for _, ov in changes[names[k]] for v, x in ov.vars.items()}}
            self.instance(j, entry, name, mine, changes[names[k]], ranged, out)
            if template is not None:
                self.stamp(spec.template, template, mine)
            self.last_of[j] = len(out) - 1

    def values(self, here: tuple, spec: SiteTemplating, instances: list) -> list[dict[str, str]] | None:
        """Each instance's placeholder values: {site}, {i}, and the entry's vars (a range gives one each)."""
        out = [{"site": str(name), **({"i": num} if num is not None else {})} for name, num in instances]
        ok = True
        for var, value in spec.vars.items():
            if var in BUILTINS:
                self.problem((*here, "vars", var), f"{{{var}}} is given by the instance; choose another name")
                ok = False
                continue
            text = str(value)
            try:
                each = [v for v, _ in expand_range(text)]  # no range: the text itself (stray braces: an error)
            except TextError as exc:
                self.problem((*here, "vars", var), str(exc))
                ok = False
                continue
            ranged = has_range(text)
            if ranged and len(each) != len(instances):
                self.problem((*here, "vars", var), f"its range gives {len(each)} values for {len(instances)} "
                                                    "instances; one each, in order")
                ok = False
                continue
            for k, row in enumerate(out):
                row[var] = each[k] if ranged else each[0]
        return out if ok else None

    def overrides(self, here: tuple, spec: SiteTemplating, names: list[str]) -> dict[str, list] | None:
        """Per instance, the overrides that apply to it in file order: [(key, SiteOverride)]."""
        out: dict[str, list] = {name: [] for name in names}
        ok = True
        for key, ov in spec.overrides.items():
            where = (*here, "overrides", key)
            try:
                targets = [name for name, _ in expand_range(key)]
            except TextError as exc:
                self.problem(where, str(exc))
                ok = False
                continue
            strangers = [t for t in targets if t not in out]
            if strangers:
                span = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
                self.problem(where, f"{strangers[0]} is not an instance of this entry ({span})")
                ok = False
            for var, value in ov.vars.items():
                if var in BUILTINS or "{" in str(value) or "}" in str(value):
                    self.problem((*where, "vars", var), "an override sets one plain value (no range, no builtin)")
                    ok = False
            for t in targets:
                if t in out:
                    out[t].append((key, ov))
        return out if ok else None

    def instance(self, j: int, entry: Mapping, name: str, values: dict[str, str], changes: list,
                 ranged: bool, out: CommentedSeq) -> None:
        """One site of the entry: its keys (placeholders filled), then its overrides."""
        k, label = len(out), (name if ranged else None)
        site = CommentedMap()
        for key, value in entry.items():
            if key in TEMPLATING_KEYS:
                continue
            site[key] = name if key == "name" else self.copy(value, values, ("sites", j, key), label)
        for okey, ov in changes:
            src = ("sites", j, "overrides", okey)
            raw = entry["overrides"][okey]
            for key, value in raw.items():
                if key == "vars":
                    continue
                if key in MERGED and isinstance(value, Mapping) and isinstance(site.get(key), Mapping):
                    merged = _shallow(site[key], CommentedMap)
                    for sub, v in value.items():
                        merged[sub] = self.copy(v, values, (*src, key, sub), label)
                        self.out.origins[("sites", k, key, sub)] = ((*src, key, sub), label)
                    site[key] = merged
                else:
                    site[key] = self.copy(value, values, (*src, key), label)
                    self.out.origins[("sites", k, key)] = ((*src, key), label)
        _copy_format(entry, site)
        self.out.origins[("sites", k)] = (("sites", j), label)
        out.append(site)

    def stamp(self, tname: str, template: Mapping, values: dict[str, str]) -> None:
        """The template's items for one instance, queued for their collections."""
        site = values["site"]
        for coll in TARGETS:
            for t, item in enumerate(template.get(coll) or []):
                written = ("templates", tname, coll, t)
                copy = self.copy(item, values, written, site)
                if coll == "nodes" and "site" not in copy:
                    copy["site"] = site
                self.added[coll].append((copy, (written, site)))

    # -- copying with placeholders filled --
    def copy(self, obj: Any, values: dict[str, str], written: tuple, label: str | None) -> Any:
        """`obj` with placeholders filled in every string (keys stay), flow style kept, comments dropped."""
        self.nodes += 1
        if self.nodes > bounds.MAX_NODES:
            item = written[:4] if written[0] == "templates" else written[:2]  # not deep inside an alias
            self.problem(item, f"the templates expand to more than {bounds.MAX_NODES} YAML nodes", label)
            raise _Abort
        if isinstance(obj, str):
            try:
                text = substitute(obj, values, limit=bounds.MAX_CHARS - self.chars)
            except TextError as exc:
                self.problem(written, str(exc), label)
                return obj
            self.chars += len(text)
            return text
        if isinstance(obj, Mapping):
            new = CommentedMap()
            for key, value in obj.items():
                self.nodes += 1
                new[key] = self.copy(value, values, (*written, key), label)
            return _copy_format(obj, new)
        if isinstance(obj, list):
            new_seq = CommentedSeq(self.copy(v, values, (*written, i), label) for i, v in enumerate(obj))
            return _copy_format(obj, new_seq)
        return obj


def _is_name(text: str) -> bool:
    return re.match(NAME_PATTERN, text) is not None


def _shallow(obj: Any, kind: type) -> Any:
    """A new mapping/sequence with `obj`'s items, comments and style (the file's own stays untouched)."""
    new = kind(obj) if kind is CommentedSeq else kind(obj.items())
    for attr in (Comment.attrib, Format.attrib):
        if hasattr(obj, attr):
            setattr(new, attr, getattr(obj, attr))
    return new


def _copy_format(src: Any, dst: Any) -> Any:
    """Keep flow or block style (a one-line node stays one line in --expand's output)."""
    if hasattr(src, Format.attrib):
        fmt = Format()
        if src.fa.flow_style():
            fmt.set_flow_style()
        else:
            fmt.set_block_style()
        setattr(dst, Format.attrib, fmt)
    return dst


def _keep_comments(raw: CommentedSeq, new: CommentedSeq, last_of: dict[int, int]) -> None:
    """The comments between the file's site entries stay after the last site each entry became."""
    if hasattr(raw, Comment.attrib):
        ca = Comment()
        ca.comment = raw.ca.comment
        for j, comment in raw.ca.items.items():
            if j in last_of:
                ca.items[last_of[j]] = comment
        setattr(new, Comment.attrib, ca)
    _copy_format(raw, new)


def to_yaml(tree: Any) -> str:
    """The expanded file as YAML text (`testbed validate --expand`): loads to the same topology.

    Round-trip dump: the file's own comments and one-line entries come out as written.
    """
    out = io.StringIO()
    yaml = YAML(typ="rt")
    yaml.width = 4096  # one entry per line, as the files are written
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.dump(tree, out)
    return out.getvalue()
