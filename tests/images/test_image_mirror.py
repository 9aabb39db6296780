"""Finding the Debian mirror apt already uses, from deb822 and one-line sources."""
from __future__ import annotations

from pathlib import Path

from testbed.images.mirror import DEFAULT_MIRROR, find_mirror, parse_deb822, parse_one_line

# As on the project's Debian 12 machines: security listed after the main archive.
DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def layout(tmp_path: Path, files: dict[str, str], sources_list: str | None = None):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    lst = tmp_path / "sources.list"
    if sources_list is not None:
        lst.write_text(sources_list)
    return dict(sources_dir=d, sources_list=lst)


def test_deb822_main_archive(tmp_path):
    assert find_mirror("bookworm", **layout(tmp_path, {"debian.sources": DEBIAN_SOURCES})) == (
        "http://deb.debian.org/debian"
    )


def test_security_and_updates_suites_do_not_count(tmp_path):
    only_security = DEBIAN_SOURCES.split("\n\n")[1]
    paths = layout(tmp_path, {"security.sources": only_security})
    assert find_mirror("bookworm", **paths) == DEFAULT_MIRROR


def test_deb822_details():
    text = """\
# a comment
Types: deb-src deb
URIs: http://mirror.example/debian/
  http://second.example/debian
Suites: bookworm
Components: main contrib

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
"""
    srcs = parse_deb822(text, "x.sources")
    assert [s.uri for s in srcs] == ["http://mirror.example/debian/", "http://second.example/debian"]
    assert srcs[0].components == ("main", "contrib")


def test_field_names_are_case_insensitive(tmp_path):
    text = "types: deb\nuris: http://m.example/debian\nsuites: bookworm\ncomponents: main\n"
    assert find_mirror("bookworm", **layout(tmp_path, {"a.sources": text})) == "http://m.example/debian"


def test_one_line_format_with_options_and_deb_src():
    text = """\
# comment
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://m.example/debian bookworm main # tail
deb cdrom:[Debian 12]/ bookworm main
"""
    srcs = parse_one_line(text, "sources.list")
    assert (srcs[0].uri, srcs[0].suites, srcs[0].components) == (
        "http://m.example/debian", ("bookworm",), ("main",)
    )
    assert all(s.uri != "http://src.example/debian" for s in srcs)


def test_sources_list_is_read_and_cdrom_skipped(tmp_path):
    lst = "deb cdrom:[Debian]/ bookworm main\ndeb http://old.example/debian/ bookworm main\n"
    assert find_mirror("bookworm", **layout(tmp_path, {}, lst)) == "http://old.example/debian"


def test_other_suffixes_are_ignored(tmp_path):
    other = "Types: deb\nURIs: http://other.example/debian\nSuites: bookworm\nComponents: main\n"
    paths = layout(
        tmp_path,
        {"a.sources.disabled-by-farm": other, "b.list.save": "deb http://x.example/debian bookworm main\n",
         "debian.sources": DEBIAN_SOURCES},
    )
    assert find_mirror("bookworm", **paths) == "http://deb.debian.org/debian"


def test_third_party_repos_without_the_suite_are_skipped(tmp_path):
    node = "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n"
    paths = layout(tmp_path, {"a-nodesource.sources": node, "debian.sources": DEBIAN_SOURCES})
    assert find_mirror("bookworm", **paths) == "http://deb.debian.org/debian"


def test_fallback_without_any_config(tmp_path):
    assert find_mirror("bookworm", sources_dir=tmp_path / "none", sources_list=tmp_path / "none.list") == (
        DEFAULT_MIRROR
    )


def test_ubuntu_host_falls_back_to_debian(tmp_path):
    ubuntu = "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\nSuites: noble noble-updates\nComponents: main\n"
    assert find_mirror("bookworm", **layout(tmp_path, {"ubuntu.sources": ubuntu})) == DEFAULT_MIRROR
