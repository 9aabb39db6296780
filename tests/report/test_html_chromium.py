"""The HTML report as a person sees it: rendered by headless Chromium, its DOM read back and a
screenshot taken (verdict first, slice table rows, SVG charts, heat map, topology drawing).

Marked integration: it needs Chromium (scripts/setup.sh installs it), not in `make unit`.
"""
from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from testbed.report.model import RunReport
from testbed.report.writers import write_html
from tests.report.conftest import need

pytestmark = pytest.mark.integration

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND")  # a report that fetched anything would show it broken
FAIL_RED = (0xC0, 0x26, 0x2D)  # --fail in report.css.j2: the banner of a failed run


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = need("chromium", "chromium")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # fresh each time
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=True)


def png_rows(data: bytes, upto: int) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, the first `upto` rows) of an 8-bit RGB(A) non-interlaced PNG:
    enough of a decoder to read pixels back without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if ctype == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif ctype == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp + 1, [], bytearray(width * bpp)
    for y in range(min(upto, height)):
        kind, line = raw[y * stride], bytearray(raw[y * stride + 1:(y + 1) * stride])
        for i in range(len(line)):
            a, b = line[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pred = (0, a, b, (a + b) // 2, a if abs(p - a) <= min(abs(p - b), abs(p - c)) else
                    b if abs(p - b) <= abs(p - c) else c)[kind]
            line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def pixel(rows: list[bytes], x: int, y: int, bpp: int) -> tuple[int, int, int]:
    return tuple(rows[y][x * bpp:x * bpp + 3])  # type: ignore[return-value]


@pytest.fixture
def page(rep: RunReport, tmp_path: Path, dot) -> Path:
    path = tmp_path / "report.html"
    write_html(rep, path)
    return path


def test_report_is_self_contained(page: Path) -> None:
    html = page.read_text()
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_dom_shows_verdict_slice_rows_and_plots(page: Path, tmp_path: Path, rep: RunReport) -> None:
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert re.search(r'<header id="verdict" class="banner FAIL">\s*<div class="big">FAIL</div>', dom)
    table = dom[dom.index('id="slo-table"'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr class=\"(pass|fail|skip)\">", table)
    assert rows == [c.status for c in rep.checks if c.kind in ("workload", "slice")]
    assert "latency p95 ≤ 50.00 ms" in table and "throughput ≥ 50.00 Mbit/s" in table
    assert dom.count('<svg class="chart"') == 2 and dom.count("<polyline") >= 2
    assert re.search(r'<table class="heat" id="heatmap">', dom) and "1 LEAK" in dom and "1 FALSE BLOCK" in dom
    assert '<svg class="topo"' in dom and "dr-tablet-01" in dom
    assert "6.1.0-test" in dom  # the environment section


def test_screenshot_is_a_rendered_page(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    width, height, bpp, rows = png_rows(data, 200)
    assert (width, height) == (1280, 2400) and len(data) > 100_000  # text, charts and a drawing, not a blank page
    assert pixel(rows, 8, 8, bpp) == FAIL_RED  # verdict banner first, in the failure colour
    assert len({rows[y][i:i + 3] for y in range(0, 200, 3) for i in range(0, len(rows[y]), bpp * 3)}) > 20
