"""The HTML report of a session: one self-contained file, opened in headless Chromium.

One session (with and without workers) writes the report of three experiments: ``demo`` (a
failed and a passed verdict), ``gpu`` (its step skips: a skipped verdict) and ``speed`` (two
passed verdicts on ``total``; ``latency`` is judged by no hypothesis). The static checks read
the file; the Chromium checks (skipped when Debian's ``chromium`` is not installed; ``.ci/run``
installs it) load it from disk with networking off, read the DOM Chromium built, and decode a
screenshot with the standard library to see that something was drawn in colour. The report's
parts are tested on hand-built documents in ``test_html_render.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from _html_dom import Node, find, parse, read_png, text
from _support import (
    IN_PROCESS,
    TWO_WORKERS,
    builder_source,
    experiment_source,
    replicate_seeds,
    seeded_boost,
    seeded_source,
    treatments_source,
    with_and_without_workers,
    workload,
)

from pytest_crystallize._report.plots import BASELINE_COLOUR

pytestmark = pytest.mark.usefixtures("private_cache_key")

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
DEMO = experiment_source(replicates=REPLICATES)  # demo: boost passes, flat fails
GPU = experiment_source(
    {"gpu": {"fast": 2.0}}, replicates=3, step_code="import pytest\npytest.skip('no GPU here')"
)
FLAT_REASON = "hypothesis 'by_p', treatment 'flat' vs baseline on 'score': welch did not pass"
HEADLINE = "1 failed · 1 skipped · 3 passed · 3 experiments"
# the most severe first, then the document's order (experiment files, then verdicts)
ROWS = [
    ("failed", "experiment_demo.py::demo::by_p::flat"),
    ("skipped", "experiment_gpu.py::gpu::by_p::fast"),
    ("passed", "experiment_demo.py::demo::by_p::boost"),
    ("passed", "experiment_speed.py::speed::faster::boosted"),
    ("passed", "experiment_speed.py::speed::faster::mild"),
]


def metric_values(metric: str, boost: float) -> list[float]:
    """What the experiment computes, replicate by replicate (the same expressions)."""
    return [
        workload(seed) + seeded_boost(seed, boost)
        if metric == "total"
        else 10.0 + (seed % 97) / 10.0 - boost / 10.0
        for seed in replicate_seeds("speed", REPLICATES)
    ]


def expected_points() -> dict[str, Counter[str]]:
    """The tooltip of every point each plot of ``speed`` should have (a Counter: jitter
    reorders nothing, but equal values may repeat)."""
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


def plots(root: Node) -> dict[str, Node]:
    return {svg.attrs["data-plot"]: svg for svg in find(root, "svg")}


def points(svg: Node) -> list[str]:
    return [text(find(c, "title")[0]) for c in find(svg, "circle", "point")]


def write_experiments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(experiment_speed=EXPERIMENT, experiment_demo=DEMO, experiment_gpu=GPU)


def run(pytester: pytest.Pytester, target: str, *dist: str) -> pytest.RunResult:
    return pytester.runpytest("--crystallize", "--crystallize-html", target, *dist)


@pytest.fixture
def dist() -> list[str]:
    """One process, unless a test is parametrized ``@with_and_without_workers``."""
    return IN_PROCESS


@pytest.fixture
def report(ourtester: pytest.Pytester, dist: list[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the three experiments with --crystallize-html and return the report's path."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    write_experiments(ourtester)
    result = run(ourtester, "out/report.html", *dist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # demo::by_p::flat
    assert result.parseoutcomes()["failed"] == 1
    return ourtester.path / "out" / "report.html"


def check_the_page(html: str) -> None:
    """The headline, the verdicts in order with their reasons, the date: what a reader sees."""
    root = parse(html)
    assert text(find(root, id="tally")[0]) == HEADLINE
    assert "1970-01-01" in text(root)  # SOURCE_DATE_EPOCH=0
    rows = [r for r in find(root, "tr") if "data-nodeid" in r.attrs]
    assert [(r.classes[0], r.attrs["data-nodeid"]) for r in rows] == ROWS
    assert [text(find(r, "td")[0]) for r in rows] == [kind for kind, _ in ROWS]
    assert [text(find(r, "td")[3]) for r in rows] == ["flat", "fast", "boost", "boosted", "mild"]
    reasons = [text(p) for p in find(root, "p", "reason")]
    assert len(reasons) == len(ROWS)
    assert reasons[0].startswith(FLAT_REASON)  # written out, not a tooltip
    assert reasons[1] == "no GPU here"


def check_the_plots(html: str) -> None:
    """Full-size plots of the judged metrics, the others folded; colours; axes."""
    root = parse(html)
    found = plots(root)
    folded = {svg.attrs["data-plot"] for d in find(root, "details") for svg in find(d, "svg")}
    assert sorted(found) == sorted(["demo: score", "demo: score paired", *expected_points()])
    assert folded == {"speed: latency", "speed: latency paired"}  # judged by no hypothesis
    for name, want in expected_points().items():
        assert Counter(points(found[name])) == want, name
    fills: dict[tuple[str, str], set[str]] = {}
    for name, svg in found.items():
        assert 4 <= len(find(svg, "text", "tick")) <= 6, name  # a labelled y axis
        assert len(find(svg, "line", "zero")) == name.endswith("paired"), name
        for circle in find(svg, "circle", "point"):
            condition = text(find(circle, "title")[0]).split(":")[0]
            fills.setdefault((name.split(":")[0], condition), set()).add(circle.attrs["fill"])
    # one colour per condition in every plot, the baseline's always the same
    assert all(len(shown) == 1 for shown in fills.values()), fills
    assert all(shown == {BASELINE_COLOUR} for (_, c), shown in fills.items() if c == "baseline")
    for experiment in ("demo", "speed"):  # and the conditions of an experiment differ
        mine = [next(iter(v)) for (e, _), v in fills.items() if e == experiment]
        assert len(set(mine)) == len(mine) == 3, experiment


def check_it_fetches_nothing(html: str) -> None:
    urls = set(re.findall(r"""(?i)\b(?:https?:)?//[^\s"'<>)]+""", html))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    lowered = html.lower()
    for needle in ("<script", "<link", "<img", "<iframe", "<object", "@import", "url("):
        assert needle not in lowered, needle
    assert not re.search(r"\s(?:src|href)\s*=", lowered)


@with_and_without_workers
def test_the_html_report_heads_with_the_tally_and_lists_failures_first(
    report: Path, dist: list[str]
) -> None:
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]  # no temporary files
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    check_the_page(html)
    check_the_plots(html)
    check_it_fetches_nothing(html)


def test_two_sessions_write_the_same_bytes_and_no_date_without_source_date_epoch(
    ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    write_experiments(ourtester)
    run(ourtester, "one.html", *IN_PROCESS)
    run(ourtester, "two.html", *TWO_WORKERS)  # other workers, another clock
    one = (ourtester.path / "one.html").read_bytes()
    assert one == (ourtester.path / "two.html").read_bytes()
    html = one.decode("utf-8")
    assert not re.search(r"\d\d:\d\d|\b(?:19|20)\d\d-\d\d-\d\d\b|<time", html)  # no clock
    assert str(ourtester.path) not in html  # no absolute path
    assert "experiment_demo.py" in html


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
def test_chromium_builds_a_dom_with_the_headline_the_rows_in_order_and_every_plot(
    report: Path, tmp_path: Path
) -> None:
    done = chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = done.stdout.decode("utf-8")
    check_the_page(dom)  # the tally, failed before passed, the reasons as visible text
    root = parse(dom)
    seen = text(root)
    assert HEADLINE in seen
    assert FLAT_REASON in seen
    assert seen.index(FLAT_REASON) < seen.index("paired t-test: p=")  # a passed row's reason
    found = plots(root)
    assert len(found) == 6
    for name, want in expected_points().items():
        assert Counter(points(found[name])) == want, name
    assert dom.count('class="point"') == (2 + 1) * (3 + 2) * REPLICATES  # score, total, latency


@needs_chromium
def test_chromium_draws_the_report_in_colour(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", report.as_uri())
    data = shot.read_bytes()
    assert len(data) > 5_000  # a blank page compresses to far less
    width, height, bpp, rows = read_png(data)
    assert (width, height) == (1200, 1600)

    pixels: Counter[tuple[int, ...]] = Counter()
    for row in rows[::2]:  # every other row and column is plenty
        for x in range(0, width * bpp, 2 * bpp):
            pixels[tuple(row[x : x + 3])] += 1
    total = sum(pixels.values())
    white = pixels[(255, 255, 255)]
    drawn = {colour: n for colour, n in pixels.items() if colour != (255, 255, 255)}
    assert total - white > 0.005 * total  # text, axes and points: not a blank page
    assert len(drawn) > 50  # antialiased text and shapes in many shades, not one flat fill
    # the points: the baseline's blue, the treatments' orange and green; the failure's red
    bluish = sum(n for (r, g, b), n in drawn.items() if b > r + 40 and b > g + 20)
    orange = sum(n for (r, g, b), n in drawn.items() if r > b + 60 and g > b + 20)
    green = sum(n for (r, g, b), n in drawn.items() if g > r + 30 and g > b + 20)
    red = sum(n for (r, g, b), n in drawn.items() if r > 150 and g < 70 and b < 70)
    assert bluish > 0
    assert orange > 0
    assert green > 0
    assert red > 0
