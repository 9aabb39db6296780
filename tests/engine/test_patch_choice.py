"""Which links are built as OVS patch ports (no root needed: the choice is made from the topology)."""
from __future__ import annotations

from types import SimpleNamespace

from mininet.link import Link

from testbed.engine.links import PATCH_GROUP_MAX, bounded_groups, link_key, patch_links
from testbed.openflow.layout import make_layout
from testbed.topology.loader import parse_text

TOPO = """
name: choice
nodes:
  - {name: s1, kind: switch}
  - {name: s2, kind: switch}
  - {name: s3, kind: switch}
  - {name: s4, kind: switch}
  - {name: s5, kind: switch}
  - {name: a, kind: host}
links:
  - {endpoints: [a, s1]}
  - {endpoints: [s1, s2]}
  - {endpoints: [s2, s3], mtu: 1400}
  - {endpoints: [s3, s4]}
  - {endpoints: [s4, s5]}
  - {endpoints: [s1, s5]}
"""


def _chosen(extra: str = "") -> set[str]:
    topo = parse_text(TOPO + extra, "choice.yaml")
    lay = make_layout(topo, "0abc")
    wirings = {ln.index: {"cls": Link} for ln in lay.links}
    return {link_key(ln.a, ln.b) for ln in patch_links(SimpleNamespace(layout=lay, topo=topo), wirings)}


def test_plain_switch_links_are_patched_but_not_host_links_or_an_mtu_of_their_own():
    assert _chosen() == {"s1:s2", "s3:s4", "s4:s5", "s1:s5"}


def test_links_a_drill_cuts_or_impairs_stay_veth_pairs():
    faults = """faults:
  - {name: cut, type: link-down, target: 's4:s3', at: 0s, duration: 1s}
  - {name: slow, type: impair, target: 's1:s2', set: [delay=5ms], at: 0s, duration: 1s}
  - {name: off, type: node-down, target: s5, at: 0s, duration: 1s}
"""
    assert _chosen(faults) == set()


def test_an_impaired_link_is_not_patched():
    topo = parse_text(TOPO, "choice.yaml")
    lay = make_layout(topo, "0abc")
    wirings = {ln.index: ({"cls": Link} if ln.index != 1 else {"cls": Link, "relay_ends": ("x", "y")})
               for ln in lay.links}
    got = {link_key(ln.a, ln.b) for ln in patch_links(SimpleNamespace(layout=lay, topo=topo), wirings)}
    assert "s1:s2" not in got and "s3:s4" in got


def _chain_links(n: int, ring: bool = False):
    nodes = "\n".join(f"  - {{name: s{i}, kind: switch}}" for i in range(n))
    links = "\n".join(f"  - {{endpoints: [s{i}, s{i + 1}]}}" for i in range(n - 1))
    if ring:
        links += f"\n  - {{endpoints: [s{n - 1}, s0]}}"
    lay = make_layout(parse_text(f"name: c\nnodes:\n{nodes}\nlinks:\n{links}\n", "c.yaml"), "0abc")
    return lay.links


def _groups(links) -> list[int]:
    """Sizes of the groups of switches the links join."""
    adj: dict[str, set[str]] = {}
    for ln in links:
        adj.setdefault(ln.a, set()).add(ln.b)
        adj.setdefault(ln.b, set()).add(ln.a)
    seen, sizes = set(), []
    for start in adj:
        if start in seen:
            continue
        stack, n = [start], 0
        seen.add(start)
        while stack:
            x = stack.pop()
            n += 1
            for y in adj[x] - seen:
                seen.add(y)
                stack.append(y)
        sizes.append(n)
    return sorted(sizes)


def test_no_group_of_patched_switches_exceeds_what_one_translation_crosses():
    links = _chain_links(100)
    chosen = bounded_groups(links)
    assert max(_groups(chosen)) <= PATCH_GROUP_MAX
    assert len(links) - len(chosen) == 2  # 100 switches: three groups (48, 48, 4), two veth trunks between them


def test_a_ring_inside_one_group_is_patched_whole():
    links = _chain_links(10, ring=True)
    assert bounded_groups(links) == links
