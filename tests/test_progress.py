"""Progress lines in logs: without a terminal, each running experiment's runs done, failures
and time left, at most every ``crystallize_progress_interval`` seconds, printed by the process
that owns the session (under xdist, from the workers' progress reports). The same sessions
check the summary table (its columns, and the values ``-vv`` shows below each row)."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from _support import IN_PROCESS, SummaryRows, chunks, section, with_and_without_workers

from pytest_crystallize._engine.table import COLUMNS

LINE = re.compile(
    r"^crystallize: experiment_demo\.py::demo: (\d+)/(\d+) runs, (\d+) failed, "
    r"about \d+ (s|min) left$"
)
VALUES = re.compile(
    r"^    score  baseline: (?P<baseline>[^ ].*?)  (?P<treatment>\w+): (?P<own>.+)$"
)
REPLICATES = 6  # 3 chunks of 2 per condition with two workers


def check_verbose_table(result: pytest.RunResult, summary_rows: SummaryRows) -> None:
    """The header, the alpha column, and below each row its per-replicate values."""
    lines = section(result.stdout.str())
    header = next(line for line in lines if line.startswith("experiment  "))
    assert re.split(r"\s{2,}", header.strip()) == list(COLUMNS)
    assert {k: (r["alpha"], r["verdict"]) for k, r in summary_rows(result).items()} == {
        "demo::by_p::boost": ("0.05", "PASSED"),
        "demo::by_p::flat": ("0.05", "FAILED"),
    }
    shown = {}
    for above, line in itertools.pairwise(lines):
        if match := VALUES.match(line):
            assert above.startswith(f"demo        by_p        {match['treatment']} ")
            shown[match["treatment"]] = (match["baseline"], match["own"])
    assert set(shown) == {"boost", "flat"}
    baseline = shown["flat"][0]
    assert len(baseline.split(", ")) == REPLICATES  # one value per replicate
    assert shown["boost"][0] == baseline  # the same baseline below both rows
    assert shown["flat"][1] == baseline  # flat adds 0 to the same seeds: the same values
    assert shown["boost"][1] != baseline


@with_and_without_workers
def test_progress_lines_reach_the_log_without_extra_reports_and_vv_shows_values(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    summary_rows: SummaryRows,
    dist: list[str],
) -> None:
    write_experiment(replicates=REPLICATES, step_code="import time; time.sleep(0.02)")
    result = ourtester.runpytest(
        "--crystallize", "--crystallize-progress-interval=0.01", "--junitxml=out.xml", "-vv", *dist
    )
    result.assert_outcomes(passed=3 * chunks(dist, 3) + 1, failed=1)
    found = [m for line in result.outlines if (m := LINE.match(line))]
    assert found, result.stdout.str()
    total = 3 * REPLICATES  # every run of every condition
    for match in found:
        done, shown_total, failed = (int(g) for g in match.groups()[:3])
        assert (shown_total, failed) == (total, 0)
        assert 0 < done < total
    for line in result.outlines:  # on a line of its own, never after a test's name or dots
        assert "crystallize: experiment_demo" not in line or line.startswith("crystallize:")
    cases = list(ET.parse(ourtester.path / "out.xml").getroot().iter("testcase"))
    assert len(cases) == 3 * chunks(dist, 3) + 2  # chunks and verdicts, nothing more
    check_verbose_table(result, summary_rows)


def test_an_interval_of_zero_prints_no_progress_and_no_values_without_vv(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    write_ini: Callable[[str], Path],
) -> None:
    write_experiment(replicates=3, step_code="import time; time.sleep(0.01)")
    write_ini("crystallize_progress_interval = 0")
    result = ourtester.runpytest("--crystallize", *IN_PROCESS)
    result.assert_outcomes(passed=3 + 1, failed=1)
    assert not [line for line in result.outlines if line.startswith("crystallize: experiment")]
    assert not [line for line in result.outlines if line.startswith("    score  ")]
