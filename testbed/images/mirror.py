"""Find the Debian mirror this machine's apt already uses.

debootstrap must fetch from a mirror the machine can reach; on developer and CI
machines only the configured Debian mirror is reachable, so we read apt's own
configuration instead of hard-coding one. Both formats are understood: deb822
`*.sources` files (Debian 12's default) and one-line `sources.list` entries.
Files with other suffixes (e.g. `foo.list.disabled`) are ignored, as apt does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MIRROR = "http://deb.debian.org/debian"
SOURCES_DIR = Path("/etc/apt/sources.list.d")
SOURCES_LIST = Path("/etc/apt/sources.list")

# URI schemes debootstrap can fetch from (apt's cdrom:, mirror+file: etc. cannot).
_USABLE_SCHEMES = ("http://", "https://", "file://", "ftp://")


@dataclass(frozen=True)
class AptSource:
    """One `deb` source: a URI serving some suites and components."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    origin: str  # "file" or "file:line", for messages


def parse_deb822(text: str, origin: str = "<deb822>") -> list[AptSource]:
    """Parse a deb822 `.sources` file into its enabled `deb` sources."""
    sources: list[AptSource] = []
    for stanza in _deb822_stanzas(text):
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        suites = tuple(stanza.get("suites", "").split())
        components = tuple(stanza.get("components", "").split())
        for uri in stanza.get("uris", "").split():
            sources.append(AptSource(uri, suites, components, origin))
    return sources


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key: str | None = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
            continue
        if raw[0] in " \t" and key is not None:  # continuation line
            current[key] += " " + raw.strip()
            continue
        name, sep, value = raw.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


_ONE_LINE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$")


def parse_one_line(text: str, origin: str = "<sources.list>") -> list[AptSource]:
    """Parse one-line-style `deb URI SUITE COMPONENT...` entries (deb-src ignored)."""
    sources: list[AptSource] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0]
        m = _ONE_LINE.match(line)
        if m:
            uri, suite, comps = m.groups()
            sources.append(AptSource(uri, (suite,), tuple(comps.split()), f"{origin}:{lineno}"))
    return sources


def configured_sources(
    sources_dir: Path = SOURCES_DIR, sources_list: Path = SOURCES_LIST
) -> list[AptSource]:
    """Every enabled `deb` source, in the order apt reads them."""
    found: list[AptSource] = []
    if sources_list.is_file():
        found += parse_one_line(_read(sources_list), str(sources_list))
    if sources_dir.is_dir():
        for path in sorted(sources_dir.iterdir()):
            if path.suffix == ".sources":
                found += parse_deb822(_read(path), str(path))
            elif path.suffix == ".list":
                found += parse_one_line(_read(path), str(path))
    return found


def find_mirror(
    suite: str = "bookworm",
    sources_dir: Path = SOURCES_DIR,
    sources_list: Path = SOURCES_LIST,
) -> str:
    """The first configured mirror that serves `suite` itself with component `main`.

    `bookworm-security` or `bookworm-updates` entries do not count: debootstrap
    needs the release itself. Falls back to `DEFAULT_MIRROR` when no entry fits
    (e.g. an Ubuntu host, whose apt serves no Debian suite).
    """
    for src in configured_sources(sources_dir, sources_list):
        if suite in src.suites and "main" in src.components and src.uri.startswith(_USABLE_SCHEMES):
            return src.uri.rstrip("/")
    return DEFAULT_MIRROR


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""  # an unreadable file is skipped, as apt would complain but go on
