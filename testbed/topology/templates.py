"""What a topology file may write to stamp out sites: `templates:` and the site keys that use them.

A file stays one `Topology` once loaded: templates are expanded on the raw YAML tree
(expand.py) before the model sees it, so nothing above this package knows they exist.
These models check the template syntax itself (the parts that are gone after expansion)
and describe it in the JSON Schema (`TopologyFile`), so editors complete and check it too.
What a template's nodes, links and UE bindings say is checked once per instance, by the
model of the expanded file, and reported at the template's own line.
"""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, PlainValidator, WithJsonSchema

from testbed.topology.fields import Name, Strict
from testbed.topology.model import Link, LinkParams, Node, Site, SiteType, Topology, UeBinding
from testbed.topology.ranges import VAR_NAME

# The keys a site entry gains; the rest of an entry is a Site, checked per instance.
TEMPLATING_KEYS = ("template", "vars", "overrides")
# A site name, or one with a range in it: chc-{01..14}, ward-{1..9..2}.
SITE_NAME_OR_RANGE = r"^[a-z0-9{][a-z0-9{}.-]{0,80}$"

def _var_value(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"a variable is text or a whole number (got {type(value).__name__})")
    return value


VarValue = Annotated[Any, PlainValidator(_var_value, json_schema_input_type=Union[str, int]),
                     Field(description="Text or a whole number; a range like '{06..19}' gives each instance its own.")]
Vars = dict[Annotated[str, Field(pattern=VAR_NAME)], VarValue]


def _checked_later(shown_as: Any) -> PlainValidator:
    """Accept anything here (the expanded site checks it, at this line); describe it as `shown_as` to editors."""
    return PlainValidator(lambda value: value, json_schema_input_type=shown_as)


class SiteOverride(Strict):
    """What one instance (or a range of them) of a site entry changes: its values win, mappings merge."""

    type: Annotated[Any, _checked_later(SiteType)] = None
    description: Annotated[Any, _checked_later(str)] = None
    link: Annotated[Any, _checked_later(LinkParams)] = None
    uplink: Annotated[Any, _checked_later(LinkParams)] = None
    vars: Vars = Field(default_factory=dict)


class SiteTemplating(Strict):
    """The keys a site entry gains: which template it stamps out, with which values, changed where."""

    template: Name | None = Field(None, description="The template (a key of `templates`) whose nodes, links and UE "
                                                    "bindings each instance of this site gets.")
    vars: Vars = Field(default_factory=dict, description="Values of the template's {placeholders} (besides {site}, "
                                                         "and {i}: the number a range gave the instance).")
    overrides: dict[Annotated[str, Field(pattern=SITE_NAME_OR_RANGE)], SiteOverride] = Field(
        default_factory=dict, description="Per instance (a name, or a range of names) changes: type, description, "
                                          "link, uplink, vars.")


def _items(model: type) -> WithJsonSchema:
    """A template's items are the model's mappings with {placeholders} in their strings: keys checked here."""
    keys = sorted(f.alias or name for name, f in model.model_fields.items())
    return WithJsonSchema({"type": "array", "items": {"type": "object", "propertyNames": {"enum": keys}}})


class Template(Strict):
    """Nodes, links and UE bindings written once, stamped out for every site that names the template."""

    description: str | None = None
    nodes: Annotated[list[dict[str, Any]], _items(Node)] = Field(
        default_factory=list, description="Appended to `nodes`; each belongs to its instance's site unless it says.")
    links: Annotated[list[dict[str, Any]], _items(Link)] = Field(default_factory=list, description="Appended to `links`.")
    ues: Annotated[list[dict[str, Any]], _items(UeBinding)] = Field(
        default_factory=list, description="Appended to `ran.ues`.")


class SiteEntry(Site, SiteTemplating):
    """A site as the file writes it: one site, or a range of them (`name: chc-{01..14}`) from a template."""

    name: str = Field(pattern=SITE_NAME_OR_RANGE, description="A site name, or one with a range: chc-{01..14}.")


class TopologyFile(Topology):
    """The file's own syntax (for the JSON Schema and key hints): a Topology plus templates and site ranges."""

    templates: dict[Name, Template] = Field(
        default_factory=dict, description="Site templates: what every site naming one gets, written once.")
    sites: list[SiteEntry] = Field(default_factory=list)
