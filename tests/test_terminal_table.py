"""The ``crystallize`` summary table's cells: comparisons with a saved baseline, alpha, verdict
words, and the per-replicate values ``-vv`` shows (a session's table: tests/test_progress.py)."""

from __future__ import annotations

from pytest_crystallize._engine.table import COLUMNS, row, table, values_line
from pytest_crystallize._engine.verdict import Verdict


def test_a_comparison_shows_its_condition_metric_and_word_and_long_values_are_cut() -> None:
    compared = Verdict(
        "demo",
        "vs-main",
        "latency",
        "passed",
        "slower",
        metrics=("latency",),
        pvalue=0.01,
        alpha=0.05,
        condition="baseline",
        comparison="regressed",
        notes=("a note",),
    )
    cells = dict(zip(COLUMNS, row(compared), strict=True))
    assert (cells["treatment"], cells["metric"], cells["alpha"]) == ("baseline", "latency", "0.05")
    assert cells["verdict"] == "REGRESSED !"
    error = Verdict("demo", "vs-main", "latency", "error", "no such metric", condition="baseline")
    assert row(error)[2:4] == ("baseline", "latency")
    assert row(error)[8:] == ("-", "ERROR")
    header, *rows = table([compared, error])
    assert header.startswith("experiment  hypothesis  treatment  metric   n  means")
    assert len(rows) == 2
    line = values_line("total", {"baseline": [1.23456, None, *range(23)], "boost": [(1, 2)]})
    assert line == (
        "    total  baseline: 1.235, -, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, "
        "17 ... (5 more)  boost: (1, 2)"
    )
