"""The error for a link that does not exist lists the links of the nodes named first, and says when it is cut.

A tester typed `link set tab-a1:b-sw`: the list of 12 stopped before tab-a1's own link, with no sign that it
was cut short, so the right link seemed not to exist."""
from __future__ import annotations

import pytest

from testbed.engine.links import LINKS_LISTED, find_link
from testbed.errors import UsageError


def test_either_order_finds_the_link():
    links = {"a:sw": 1}
    assert find_link(links, "a:sw") == ("a:sw", 1) and find_link(links, "sw:a") == ("a:sw", 1)


def test_a_wrong_link_lists_the_named_nodes_links_first_and_says_how_many_there_are():
    links = {f"n{i:02d}:core": i for i in range(30)} | {"tab-a1:a-sw": 1, "tab-b1:b-sw": 2}
    with pytest.raises(UsageError) as exc:
        find_link(links, "tab-a1:b-sw")
    msg = str(exc.value)
    listed = msg.split("first: ")[1].split(", ...")[0].split(", ")
    assert listed[:2] == ["tab-a1:a-sw", "tab-b1:b-sw"] and len(listed) == LINKS_LISTED
    assert "(32 in all: `testbed status` lists them)" in msg


def test_a_short_list_is_whole_and_an_empty_one_says_how_to_make_a_link_changeable():
    with pytest.raises(UsageError, match=r"changeable links: a:sw, b:sw$"):
        find_link({"a:sw": 1, "b:sw": 2}, "x:y")
    with pytest.raises(UsageError, match="even 0ms"):
        find_link({}, "x:y")
