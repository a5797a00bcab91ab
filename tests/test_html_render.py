"""The HTML report's parts on hand-built session documents: the headline, the order and words
of the verdict table, colours, judged and folded metrics, the date, and the axis ticks.

A whole session writing the report (with and without workers, and in Chromium) is tested in
``test_html_report.py``.
"""

from __future__ import annotations

import itertools
import math
import random
import struct
import zlib
from typing import Any

import pytest
from _html_dom import find, parse, read_png, text

from pytest_crystallize._report.html import render, report_date
from pytest_crystallize._report.plots import (
    BASELINE_COLOUR,
    PALETTE,
    condition_colours,
    nice_ticks,
    tick_labels,
)
from pytest_crystallize._report.tally import tally, tally_line

SEEDS = [11, 12, 13]


def verdict(outcome: str, condition: str, **extra: Any) -> dict[str, Any]:
    """A verdict as the document holds it (``Verdict.to_json()`` plus node id)."""
    hypothesis = extra.pop("hypothesis", "h")
    experiment = extra.pop("experiment", "exp")
    return {
        "experiment": experiment,
        "hypothesis": hypothesis,
        "treatment": extra.pop("treatment", condition),
        "outcome": outcome,
        "message": f"why {condition} {outcome}",
        "verifier": "paired t-test",
        "metrics": ["m"],
        "pvalue": 0.5,
        "pvalue_adjusted": None,
        "mean_baseline": 1.0,
        "mean_treatment": 2.0,
        "difference": 1.0,
        "ci_low": 0.5,
        "ci_high": 1.5,
        "notes": [],
        "condition": condition,
        "comparison": None,
        "nodeid": f"experiment_{experiment}.py::{experiment}::{hypothesis}::{condition}",
        "reported_as": outcome,
        **extra,
    }


def experiment(name: str, conditions: dict[str, dict[str, list[Any]]], *verdicts: Any) -> Any:
    return {
        "name": name,
        "file": f"experiment_{name}.py",
        "replicates": len(SEEDS),
        "fingerprint": "f" * 16,
        "conditions": [
            {"name": c, "seeds": SEEDS, "failed_replicates": [], "metrics": metrics}
            for c, metrics in conditions.items()
        ],
        "verdicts": list(verdicts),
    }


def document(*experiments: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "created": "2031-02-03T04:05:06+00:00",  # the wall clock: never shown
        "settings": {},
        "environment": {"python": "3.12.1", "platform": "Linux", "git": None},
        "cache": {"hits": 7, "misses": 1, "seconds_saved": 1.5},
        "experiments": list(experiments),
    }


M = {"m": [1.0, 2.0, 3.0]}
EVERY_BUCKET = experiment(
    "exp",
    {"baseline": M, "a": M, "b": M, "c": M, "d": M, "e": M, "<f>": M},
    verdict("passed", "a"),
    verdict("passed", "b", treatment="m (saved)", comparison="regressed"),
    verdict("skipped", "c"),
    verdict("inconclusive", "d", reported_as="failed"),
    verdict("passed", "e", comparison="improved"),
    verdict("error", "<f>"),
    verdict("failed", "a", hypothesis="h2"),
)


def test_the_headline_is_the_tally_and_rows_go_most_severe_first() -> None:
    html = render(document(EVERY_BUCKET), environ={})
    root = parse(html)
    counts = tally([EVERY_BUCKET])
    words = "1 failed · 1 error · 1 inconclusive · 1 regressed · 1 skipped · 2 passed"
    assert text(find(root, id="tally")[0]) == f"{words} · 1 experiment"
    assert text(find(root, "title")[0]) == f"crystallize: {tally_line(counts)}"
    rows = [r for r in find(root, "tr") if "data-nodeid" in r.attrs]
    cells = [[text(td) for td in find(r, "td")] for r in rows]
    # outcome (the comparison's word when set), experiment, hypothesis, condition, metric,
    # means, change [95% CI], p (adj)
    assert [c[0] for c in cells] == [
        "failed",
        "error",
        "inconclusivereported as failed",
        "regressed",
        "skipped",
        "passed",
        "improved",
    ]
    assert [c[3] for c in cells] == ["a", "<f>", "d", "b", "c", "a", "e"]  # the condition
    assert cells[0][1:] == ["exp", "h2", "a", "m", "1 → 2", "+1 [+0.5, +1.5]", "0.5"]
    assert [r.classes[0] for r in rows] == [
        "failed",
        "error",
        "inconclusive",
        "regressed",
        "skipped",
        "passed",
        "passed",
    ]
    # every reason written out under its row, in the same order
    assert [text(p) for p in find(root, "p", "reason")] == [
        "why a failed",
        "why <f> error",
        "why d inconclusive",
        "why b passed",
        "why c skipped",
        "why a passed",
        "why e passed",
    ]
    assert "<f>" not in html  # names are escaped
    assert "&lt;f&gt;" in html


def test_no_verdicts_says_so() -> None:
    root = parse(render(document(), environ={}))
    assert text(find(root, id="tally")[0]) == "no verdicts · 0 experiments"
    assert "No verdicts." in text(root)


def test_judged_metrics_are_plotted_full_size_and_the_others_folded() -> None:
    data = {"score": [1.0, 2.0, 4.0], "loss": [0.5, 0.4, 0.1], "aux": [3.0, 3.0, 3.5]}
    shifted = {k: [v + 1 for v in vs] for k, vs in data.items()}
    exp = experiment(
        "x", {"baseline": data, "t": shifted}, verdict("passed", "t", metrics=["score"])
    )
    root = parse(render(document(exp), environ={}))
    every = {s.attrs["data-plot"] for s in find(root, "svg")}
    folded = {s.attrs["data-plot"] for d in find(root, "details") for s in find(d, "svg")}
    assert every - folded == {"x: score", "x: score paired"}
    assert folded == {"x: aux", "x: aux paired", "x: loss", "x: loss paired"}
    assert text(find(root, "summary")[0]) == "2 other metrics, judged by no hypothesis: aux, loss"
    for svg in find(root, "svg"):
        paired = svg.attrs["data-plot"].endswith("paired")
        zero = find(svg, "line", "zero")
        assert len(zero) == paired
        if paired:  # the zero line is labelled, and sits at the axis' tick "0"
            assert text(find(svg, "text", "zero-label")[0]) == "0 = no change"
            ticks = {float(text(t)): float(t.attrs["y"]) for t in find(svg, "text", "tick")}
            assert ticks[0.0] - 4 == float(zero[0].attrs["y1"])


def test_a_condition_has_one_colour_in_every_plot_the_baseline_always_the_same() -> None:
    one = experiment("one", {"baseline": M, "fast": M, "slow": M})
    two = experiment("two", {"baseline": M, "slow": M, "new": M})
    colours = condition_colours([one, two])
    assert colours == {
        "baseline": BASELINE_COLOUR,
        "fast": PALETTE[0],
        "slow": PALETTE[1],
        "new": PALETTE[0],  # the first colour no condition of "two" has
    }
    root = parse(render(document(one, two), environ={}))
    for svg in find(root, "svg"):
        for circle in find(svg, "circle", "point"):
            condition = text(find(circle, "title")[0]).split(":")[0]
            assert circle.attrs["fill"] == colours[condition], svg.attrs["data-plot"]


def test_the_date_is_source_date_epoch_and_nothing_else_varies() -> None:
    doc = document(EVERY_BUCKET)
    html = render(doc, environ={"SOURCE_DATE_EPOCH": "86399"})
    assert "<time datetime='1970-01-01'>1970-01-01</time>" in html
    assert report_date({"SOURCE_DATE_EPOCH": "1700000000"}) == "2023-11-14"
    assert report_date({}) is None
    plain = render(doc, environ={})
    assert "<time" not in plain
    for shown_elsewhere in ("2031", "04:05", "hits", "seconds"):  # clock and cache: never
        assert shown_elsewhere not in plain
    other = {**doc, "created": "1999-01-01T00:00:00+00:00", "cache": {"hits": 0}}
    assert render(other, environ={}) == plain


@pytest.mark.parametrize("value", ["yesterday", "1.5", "-5", "9" * 30])
def test_a_bad_source_date_epoch_is_an_error_naming_it(value: str) -> None:
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH=") as error:
        report_date({"SOURCE_DATE_EPOCH": value})
    assert str(error.value) == (
        f"SOURCE_DATE_EPOCH={value!r} is not a date the HTML report can show: it must be a "
        "whole number of seconds since 1970-01-01 UTC (such as the last commit's, from "
        "'git log -1 --format=%ct'); set it to one or unset it"
    )


# --- axis ticks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "ticks", "labels"),
    [
        (0.0, 1.0, [0, 0.2, 0.4, 0.6, 0.8, 1], ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        (105.1, 124.9, [105, 110, 115, 120, 125], ["105", "110", "115", "120", "125"]),
        (
            -0.5,
            0.0,
            [-0.5, -0.4, -0.3, -0.2, -0.1, 0],
            ["-0.5", "-0.4", "-0.3", "-0.2", "-0.1", "0.0"],
        ),
        (5.0, 5.0, [4.5, 4.75, 5, 5.25, 5.5], ["4.50", "4.75", "5.00", "5.25", "5.50"]),
        (0.0, 0.0, [-1, -0.5, 0, 0.5, 1], ["-1.0", "-0.5", "0.0", "0.5", "1.0"]),
        (0.3, 0.9, [0.2, 0.4, 0.6, 0.8, 1], ["0.2", "0.4", "0.6", "0.8", "1.0"]),
        (0.0, 7.0, [0, 2, 4, 6, 8], ["0", "2", "4", "6", "8"]),
        (-3.0, 12.0, [-5, 0, 5, 10, 15], ["-5", "0", "5", "10", "15"]),
        (
            1e6,
            9e6,
            [0, 2e6, 4e6, 6e6, 8e6, 1e7],
            ["0", "2000000", "4000000", "6000000", "8000000", "10000000"],
        ),
        (1e-4, 4e-4, [1e-4, 2e-4, 3e-4, 4e-4], ["0.0001", "0.0002", "0.0003", "0.0004"]),
        (
            13594010.0,
            13594190.0,
            [13594000 + 50 * i for i in range(5)],
            ["13594000", "13594050", "13594100", "13594150", "13594200"],
        ),
        (-1e9, 3e9, [-1e9, 0, 1e9, 2e9, 3e9], ["-1e+09", "0", "1e+09", "2e+09", "3e+09"]),
        (2e-8, 9e-8, [2e-8, 4e-8, 6e-8, 8e-8, 1e-7], ["2e-08", "4e-08", "6e-08", "8e-08", "1e-07"]),
    ],
)
def test_nice_ticks(low: float, high: float, ticks: list[float], labels: list[str]) -> None:
    assert nice_ticks(low, high) == pytest.approx(ticks)
    assert tick_labels(nice_ticks(low, high)) == labels


def test_nice_ticks_are_4_to_6_round_numbers_covering_any_range() -> None:
    rng = random.Random(20240601)
    for _ in range(1000):
        scale = 10 ** rng.uniform(-8, 8)
        low = rng.uniform(-1, 1) * scale
        high = low + rng.choice([0.0, rng.uniform(0, 1) * scale, rng.uniform(0, 1e-3) * scale])
        ticks = nice_ticks(low, high)
        assert 4 <= len(ticks) <= 6, (low, high, ticks)
        assert ticks[0] <= low, (low, high, ticks)
        assert ticks[-1] >= high, (low, high, ticks)
        step = ticks[1] - ticks[0]
        assert all(math.isclose(b - a, step, rel_tol=1e-6) for a, b in itertools.pairwise(ticks))
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10)), step
        assert len(set(tick_labels(ticks))) == len(ticks), ticks  # labels tell them apart


@pytest.mark.parametrize(("low", "high"), [(1.0, 0.0), (math.nan, 1.0), (0.0, math.inf)])
def test_nice_ticks_refuse_a_broken_range(low: float, high: float) -> None:
    with pytest.raises(ValueError, match=r"an axis needs finite ends with low <= high, got low="):
        nice_ticks(low, high)


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
