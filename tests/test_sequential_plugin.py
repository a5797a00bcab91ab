"""Sequential designs under pytest and xdist: chunks belong to looks, the session's owner
judges each look as soon as its chunks are in, and a decision skips the later looks' chunks.

The verdicts depend only on the looks up to the decision, so every way of running the
session gives the same ones; only the work wasted (chunks that had started) varies.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
from _support import (
    IN_PROCESS,
    NO_XDIST,
    TWO_WORKERS,
    SummaryRows,
    experiment_source,
    from_json,
    with_and_without_workers,
)

# "strong" (delta 5) passes at its first look; "aa" (an A/A test: flat reproduces the
# baseline exactly, p = 1, no difference) stops for futility at look 2 (its two-sided test
# is read in the better direction, higher: a one-sided p-value of 0.5, futile above 0.67 at
# look 1 of 3, not yet; above 0.31 at look 2). 12 replicates over 3 looks: 4, 8, 12.
EXPERIMENTS = {"strong": {"boost": 5.0}, "aa": {"flat": 0.0}}
SCHEDULE = [4, 8, 12]


def sequential_source(looks: int | None = 3, *, others: dict[str, Any] | None = None) -> str:
    """The experiments of ``EXPERIMENTS`` with 12 replicates (sequential over ``looks``),
    then those of ``others`` without a design."""
    source = experiment_source({**EXPERIMENTS, **(others or {})}, replicates=12)
    design = f"    .sequential(looks={looks})\n    .replicates(12)"
    for name in EXPERIMENTS:
        start = source.index(f'Experiment.builder("{name}")')
        end = source.index(".replicates(12)", start)
        source = source[:end] + design.strip() + source[end + len(".replicates(12)") :]
    return source


@pytest.fixture
def run_session(ourtester: pytest.Pytester) -> Callable[..., pytest.RunResult]:
    """``run_session(*args)``: ``pytest --crystallize -rs -rA --crystallize-json=report.json``."""

    def run(*args: str) -> pytest.RunResult:
        return ourtester.runpytest(
            "--crystallize", "-rs", "-rA", "--crystallize-json=r.json", *args
        )

    return run


def _sequential_fields(path: Path) -> dict[str, Any]:
    report = from_json(path)
    assert report["schema_version"] == 4
    return {e["name"]: (e["sequential"], e["replicates"]) for e in report["experiments"]}


def test_each_experiment_stops_at_the_look_that_decides_it_with_the_same_verdicts_everywhere(
    ourtester: pytest.Pytester,
    run_session: Callable[..., pytest.RunResult],
    summary_rows: SummaryRows,
) -> None:
    # "plain" has no design of its own: --crystallize-sequential=3 gives it one.
    ourtester.makepyfile(experiment_seq=sequential_source(others={"plain": {"lift": 5.0}}))
    on = "--crystallize-sequential=3"
    result = run_session(*IN_PROCESS, on)
    # One chunk per look and condition in one process: the deciding look's run, then skips.
    result.assert_outcomes(passed=10, failed=1, skipped=10)
    skips = "SKIPPED [[]4[]] experiment_seq.py:*: decided at look 1 of 3"  # one per experiment
    futile = "SKIPPED [[]2[]] experiment_seq.py:*: decided at look 2 of 3"
    # One line per experiment, in the order of their first skips (all looks 2, then 3).
    assert sum(fnmatch(line, skips) for line in result.outlines) == 2
    result.stdout.fnmatch_lines([futile])
    assert "a replicate" not in result.stdout.str()  # the decision's skips are no missing runs
    rows = summary_rows(result)
    outcomes = {"strong::by_p::boost": "PASSED", "aa::by_p::flat": "FAILED"}
    assert {k: r["verdict"] for k, r in rows.items()} == {**outcomes, "plain::by_p::lift": "PASSED"}
    assert {k: row["n"] for k, row in rows.items()} == {
        "strong::by_p::boost": "4/4",  # the replicates of the deciding look
        "aa::by_p::flat": "8/8",
        "plain::by_p::lift": "4/4",
    }
    crossed = "look 1 of 3: every comparison crossed its boundary"
    used = {
        "looks": 3,
        "schedule": SCHEDULE,
        "stopped_at_look": 1,
        "replicates_used": 4,
        "reason": crossed,
    }
    futile = (
        "look 2 of 3: stopped for futility (every comparison that has not crossed has less "
        "than a 2.5% chance to cross by the last look; a two-sided test in its metric's "
        "better direction: score: higher is better (assumed; if lower is, say so with "
        "--crystallize-lower-is-better score or the ini setting crystallize_lower_is_better))"
    )
    futility = {**used, "stopped_at_look": 2, "replicates_used": 8, "reason": futile}
    fields = _sequential_fields(ourtester.path / "r.json")
    assert fields == {"strong": (used, 4), "aa": (futility, 8), "plain": (used, 4)}
    # --lf selects the failed verdict, and with it every chunk of its own design, from look 1.
    again = run_session(*IN_PROCESS, "--lf")
    again.stdout.fnmatch_lines(["*selected 6 chunks and 1 verdict*"])
    again.assert_outcomes(passed=4, failed=1, skipped=2)
    assert summary_rows(again)["aa::by_p::flat"] == rows["aa::by_p::flat"]
    for mode in (TWO_WORKERS, [*TWO_WORKERS, "--dist", "worksteal"], NO_XDIST):
        other = run_session(*mode, on)
        assert other.ret == pytest.ExitCode.TESTS_FAILED
        assert summary_rows(other) == rows, mode
        assert _sequential_fields(ourtester.path / "r.json") == fields, mode
        skipped = other.parseoutcomes().get("skipped", 0)
        if skipped:  # under xdist, the chunks that had started when the decision came ran
            other.stdout.fnmatch_lines(["SKIPPED *: decided at look * of 3"])


@with_and_without_workers
def test_sequential_off_runs_every_chunk_of_the_full_design(
    ourtester: pytest.Pytester,
    run_session: Callable[..., pytest.RunResult],
    summary_rows: SummaryRows,
    dist: list[str],
) -> None:
    ourtester.makepyfile(experiment_seq=sequential_source())
    off = run_session(*dist, "--crystallize-sequential=off")
    assert off.parseoutcomes().get("skipped", 0) == 0  # every chunk runs
    assert "decided at look" not in off.stdout.str()
    assert set(_sequential_fields(ourtester.path / "r.json").values()) == {(None, 12)}
    rows = summary_rows(off)
    assert {k: (r["verdict"], r["n"]) for k, r in rows.items()} == {
        "strong::by_p::boost": ("PASSED", "12/12"),
        "aa::by_p::flat": ("FAILED", "12/12"),
    }


def test_a_bad_sequential_setting_names_the_option_and_the_value(
    ourtester: pytest.Pytester, run_session: Callable[..., pytest.RunResult]
) -> None:
    ourtester.makepyfile(experiment_seq=sequential_source())
    result = run_session(*IN_PROCESS, "--crystallize-sequential=13")
    result.stdout.fnmatch_lines(
        [
            "*experiment 'strong': sequential(looks=13) needs at least one replicate per look*"
            "--crystallize-sequential=13 or ini crystallize_sequential*"
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error: nothing ran


def test_every_experiment_runs_its_look_1_before_any_runs_its_look_2(
    ourtester: pytest.Pytester,
) -> None:
    # In one process each look is one chunk per condition: chunk-0 is look 1, chunk-1 look 2.
    ourtester.makepyfile(experiment_seq=sequential_source(others={"plain": {"lift": 5.0}}))
    result = ourtester.runpytest("--crystallize", "--collect-only", "-q")
    chunks = [line.split("::", 1)[1] for line in result.outlines if "::chunk-" in line]
    assert [c.rsplit("-", 1)[1] for c in chunks] == ["0"] * 6 + ["1"] * 4 + ["2"] * 4
    assert chunks[:6] == [  # "plain" has no design: all its chunks are look-1 work
        "strong::baseline::chunk-0",
        "strong::boost::chunk-0",
        "aa::baseline::chunk-0",
        "aa::flat::chunk-0",
        "plain::baseline::chunk-0",
        "plain::lift::chunk-0",
    ]
    assert chunks[6:8] == ["strong::baseline::chunk-1", "strong::boost::chunk-1"]
