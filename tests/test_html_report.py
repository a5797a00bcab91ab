"""The HTML report: one self-contained file with inline SVG plots, opened in headless Chromium.

The static checks read the file; the Chromium checks (skipped when Debian's ``chromium`` is not
installed; ``.ci/run`` installs it) load it from disk with networking off, read the DOM
Chromium built, and decode a screenshot with the standard library to see that something was
drawn in colour.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _support import (
    IN_PROCESS,
    MODES,
    builder_source,
    replicate_seeds,
    seeded_boost,
    seeded_source,
    treatments_source,
    workload,
)

REPLICATES = 5
BOOSTS = {"baseline": 0.0, "boosted": 5.0, "mild": 1.0}
CHROMIUM_SECONDS = 30  # each Chromium call; together they stay well under that

EXPERIMENT = seeded_source(
    """
    @pipeline_step()
    def run(value, ctx, *, boost=0.0):
        total = value + boost * (1.0 + (ctx.seed // 1000 % 10) / 10.0)
        latency = 10.0 + (ctx.seed % 97) / 10.0 - boost / 10.0
        return total, {"total": total, "latency": latency}
    """,
    builder_source(
        "speed",
        source="workload()",
        steps=["run()"],
        treatments=treatments_source({"boosted": 5.0, "mild": 1.0}, key="boost"),
        hypotheses="faster",
        replicates=REPLICATES,
    ),
)


def metric_values(metric: str, boost: float) -> list[float]:
    """What the experiment computes, replicate by replicate (the same expressions)."""
    return [
        workload(seed) + seeded_boost(seed, boost)
        if metric == "total"
        else 10.0 + (seed % 97) / 10.0 - boost / 10.0
        for seed in replicate_seeds("speed", REPLICATES)
    ]


class Plots(HTMLParser):
    """The points of every ``<svg data-plot=...>``: plot -> [title of each circle.point]."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: dict[str, list[str]] = {}
        self.svg: str | None = None
        self.in_point = False
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self.svg = found.get("data-plot") or ""
            self.plots[self.svg] = []
        elif tag == "circle" and found.get("class") == "point" and self.svg is not None:
            self.in_point = True
            self.plots[self.svg].append("")
        elif tag == "title" and self.in_point:
            self.in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.svg = None
        elif tag == "circle":
            self.in_point = False
        elif tag == "title":
            self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.in_title and self.svg is not None:
            self.plots[self.svg][-1] += data


def plots_of(html: str) -> dict[str, list[str]]:
    parser = Plots()
    parser.feed(html)
    return parser.plots


def expected_plots() -> dict[str, Counter[str]]:
    """The title of every point each plot should have (a Counter: jitter reorders nothing,
    but equal values may repeat)."""
    want: dict[str, Counter[str]] = {}
    for metric in ("latency", "total"):
        base = metric_values(metric, 0.0)
        want[f"speed: {metric}"] = Counter(
            f"{name}: {v:.6g}" for name, b in BOOSTS.items() for v in metric_values(metric, b)
        )
        want[f"speed: {metric} paired"] = Counter(
            f"{name}: {t - b0:.6g}"
            for name, boost in BOOSTS.items()
            if name != "baseline"
            for b0, t in zip(base, metric_values(metric, boost), strict=True)
        )
    return want


@pytest.fixture
def report(ourtester: pytest.Pytester, request: pytest.FixtureRequest) -> Path:
    """Run the experiment with --crystallize-html and return the report's path."""
    dist = getattr(request, "param", IN_PROCESS)
    ourtester.makepyfile(experiment_speed=EXPERIMENT)
    result = ourtester.runpytest("--crystallize", "--crystallize-html", "out/report.html", *dist)
    assert result.ret == pytest.ExitCode.OK
    return ourtester.path / "out" / "report.html"


@pytest.mark.parametrize("report", MODES[:2], indirect=True)  # n0, n2
def test_the_html_report_is_one_file_with_an_inline_svg_plot_per_metric_and_of_pairs(
    report: Path,
) -> None:
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]  # no temporary files
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")

    plots = plots_of(html)
    assert sorted(plots) == [
        "speed: latency",
        "speed: latency paired",
        "speed: total",
        "speed: total paired",
    ]
    # every replicate of every condition is a point whose tooltip holds its value
    for name, titles in expected_plots().items():
        assert Counter(plots[name]) == titles, name
    assert html.count('class="mean"') == html.count('class="ci"') == 2 * (3 + 2)

    # and the verdict table, one row per verdict
    assert html.count("<table class='verdicts'>") == 1
    assert re.search(r"<td>faster</td><td>boosted</td><td>paired t-test</td>", html)
    assert re.search(r"<td>faster</td><td>mild</td><td>paired t-test</td>", html)


@pytest.mark.parametrize("report", MODES[:2], indirect=True)  # n0, n2
def test_the_html_report_fetches_nothing(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    urls = set(re.findall(r"""(?i)\b(?:https?:)?//[^\s"'<>)]+""", html))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    lowered = html.lower()
    for needle in ("<script", "<link", "<img", "<iframe", "<object", "@import", "url("):
        assert needle not in lowered, needle
    assert not re.search(r"\s(?:src|href)\s*=", lowered)


# --- in headless Chromium -----------------------------------------------------------------


def _chromium() -> str | None:
    found = shutil.which("chromium")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    return found


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)",
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium with networking and background services off."""
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=CHROMIUM_SECONDS, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish in {CHROMIUM_SECONDS} s: {' '.join(command)}")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


@needs_chromium
def test_chromium_builds_a_dom_with_every_plot_and_point(report: Path, tmp_path: Path) -> None:
    done = chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = done.stdout.decode("utf-8")
    plots = plots_of(dom)
    assert sorted(plots) == sorted(expected_plots())
    for name, titles in plots.items():
        groups = 2 if name.endswith("paired") else 3
        assert len(titles) == groups * REPLICATES, name
        assert Counter(titles) == expected_plots()[name], name
    assert dom.count("<svg") == 4
    assert dom.count('class="point"') == 2 * (3 + 2) * REPLICATES


def read_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows) of an 8-bit RGB(A), non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert (depth, color in (2, 6), interlace) == (8, True, 0), header
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    low = int.from_bytes(b"\x7f" * stride, "big")
    high = int.from_bytes(b"\x80" * stride, "big")
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:  # Up: bytewise addition of whole rows at once (no carries across)
            x, p = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
            line = bytearray((((x & low) + (p & low)) ^ ((x ^ p) & high)).to_bytes(stride, "big"))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + (left + prev[i]) // 2) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def test_the_png_reader_decodes_every_filter() -> None:
    """A 3x5 RGB image written with each of the five row filters in turn."""
    rows = [
        bytes(v for x in range(3) for v in ((x * 91 + y * 33) % 256, (x * y * 50) % 256, 255 - x))
        for y in range(5)
    ]
    filtered, prev = b"", bytes(9)
    for kind, row in enumerate(rows):
        out = bytearray()
        for i, value in enumerate(row):
            a = row[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            p = a + b - c
            paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            predict = (0, a, b, (a + b) // 2, paeth)[kind]
            out.append((value - predict) & 255)
        filtered += bytes([kind]) + bytes(out)
        prev = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 5, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(filtered)) + chunk(b"IEND", b"")
    assert read_png(png) == (3, 5, 3, rows)


@needs_chromium
def test_chromium_draws_the_plots_in_colour(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri())
    data = shot.read_bytes()
    assert len(data) > 5_000  # a blank page compresses to far less
    width, height, bpp, rows = read_png(data)
    assert (width, height) == (1200, 2000)

    pixels: Counter[tuple[int, ...]] = Counter()
    for row in rows[::2]:  # every other row and column is plenty
        for x in range(0, width * bpp, 2 * bpp):
            pixels[tuple(row[x : x + 3])] += 1
    total = sum(pixels.values())
    white = pixels[(255, 255, 255)]
    drawn = {colour: n for colour, n in pixels.items() if colour != (255, 255, 255)}
    assert total - white > 0.005 * total  # text, axes and points: not a blank page
    assert len(drawn) > 50  # antialiased text and shapes in many shades, not one flat fill
    # the points are coloured: the baseline's blue, the treatments' orange and green
    bluish = sum(n for (r, g, b), n in drawn.items() if b > r + 40 and b > g + 20)
    orange = sum(n for (r, g, b), n in drawn.items() if r > b + 60 and g > b + 20)
    green = sum(n for (r, g, b), n in drawn.items() if g > r + 30 and g > b + 20)
    assert bluish > 0
    assert orange > 0
    assert green > 0
