"""Selection and interruption: -k, --lf, --deselect, -x; never a verdict on partial data."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from _support import TWO_EXPERIMENTS, TWO_WORKERS, chunks, in_every_mode

# 8 replicates of 3 conditions: one chunk per condition in one process, 3 with two workers
# (about four chunks per worker over the experiment).
CHUNKS_WITH_WORKERS = 3


@in_every_mode
def test_k_treatment_keeps_the_baseline_chunks_and_gives_only_that_verdict(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "-v", "-rA", "-k", "boost", *dist)
    result.assert_outcomes(passed=2 * chunks(dist, CHUNKS_WITH_WORKERS) + 1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines_random(
        [
            "*PASSED experiment_demo.py::demo::baseline::chunk-0",
            "*PASSED experiment_demo.py::demo::boost::chunk-0",
            "*experiment_demo.py::demo::by_p::boost PASSED p=*e-0* *",
        ]
    )
    result.stdout.no_fnmatch_line("*::demo::flat::*")
    result.stdout.no_fnmatch_line("*::by_p::flat*")
    if dist != TWO_WORKERS:  # workers deselect on their own: the controller shows no count
        # flat's chunk and its verdict are deselected; the baseline's chunk is kept.
        result.stdout.fnmatch_lines(["*collected 5 items / 2 deselected / 3 selected*"])


@in_every_mode
def test_last_failed_reruns_the_failed_verdict_with_the_chunks_it_needs_and_nothing_else(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment(experiments=TWO_EXPERIMENTS)
    # Chunks: demo has 3 conditions, steady 2; with two workers 3 and 4 chunks per condition.
    demo_chunks, steady_chunks = (9, 8) if dist == TWO_WORKERS else (3, 2)
    first = ourtester.runpytest("--crystallize", *dist)
    first.assert_outcomes(passed=demo_chunks + steady_chunks + 2, failed=1)
    first.stdout.fnmatch_lines(["FAILED p=1 experiment_demo.py::demo::by_p::flat - *"])

    again = ourtester.runpytest("--crystallize", "--lf", "-v", "-rA", *dist)
    # flat's verdict, on flat's and the baseline's chunks; not boost, not steady.
    again.assert_outcomes(passed=2 * demo_chunks // 3, failed=1)
    assert again.ret == pytest.ExitCode.TESTS_FAILED
    again.stdout.fnmatch_lines_random(
        [
            "*PASSED experiment_demo.py::demo::baseline::chunk-0",
            "*PASSED experiment_demo.py::demo::flat::chunk-0",
            "*experiment_demo.py::demo::by_p::flat FAILED p=1 *",
        ]
    )
    again.stdout.no_fnmatch_line("*steady*")
    again.stdout.no_fnmatch_line("*boost*")


@pytest.mark.parametrize(
    ("chunk", "outcomes"),
    [
        # Every verdict needs the baseline: none is left, so nothing runs.
        pytest.param("baseline::chunk-0", {}, id="baseline"),
        # boost's verdict goes; flat's is judged on flat's and the baseline's chunks.
        pytest.param("boost::chunk-1", {"passed": 6, "failed": 1}, id="treatment"),
    ],
)
def test_deselecting_a_chunk_drops_the_verdicts_that_need_it(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    chunk: str,
    outcomes: dict[str, int],
) -> None:
    write_experiment()
    deselect = f"experiment_demo.py::demo::{chunk}"
    result = ourtester.runpytest("--crystallize", "-rA", "--deselect", deselect, *TWO_WORKERS)
    result.assert_outcomes(**outcomes)
    if not outcomes:
        assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    else:
        result.stdout.fnmatch_lines(["FAILED p=1 experiment_demo.py::demo::by_p::flat - *"])
    result.stdout.no_fnmatch_line("*by_p::boost*")
    result.stdout.no_fnmatch_line("*SKIPPED*")


@in_every_mode
def test_k_not_baseline_keeps_the_baseline_every_verdict_needs(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "-rA", "-k", "not baseline", *dist)
    # No verdict is named "baseline": all are selected, and their chunks with them.
    result.assert_outcomes(passed=3 * chunks(dist, CHUNKS_WITH_WORKERS) + 1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED p=* experiment_demo.py::demo::by_p::boost - *",
            "FAILED p=1 experiment_demo.py::demo::by_p::flat - *",
        ]
    )


STOPPED = (
    "did not run: the session stopped first (-x, --maxfail, an interrupt or a crash); no verdict"
)


def setup_errors(stdout: str) -> dict[str, str]:
    """The message under each ``ERROR at setup of <verdict>`` header, by verdict."""
    lines = stdout.splitlines()
    return {
        found[1]: lines[i + 1]
        for i, line in enumerate(lines)
        if (found := re.fullmatch(r"_+ ERROR at setup of (\S+) _+", line))
    }


@in_every_mode
def test_with_x_a_failing_first_chunk_turns_every_verdict_into_an_error_saying_what_did_not_run(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    # Replicate 0 of the baseline fails, in demo's baseline::chunk-0 and steady's.
    write_experiment(
        experiments=TWO_EXPERIMENTS,
        step_code="""
            if ctx["condition"] == "baseline" and ctx["replicate"] == 0:
                raise ValueError("no data for replicate 0")
        """,
    )
    result = ourtester.runpytest("--crystallize", "-rA", "-x", *dist)
    stdout = result.stdout.str()
    failing = {f"experiment_demo.py::{name}::baseline::chunk-0" for name in ("demo", "steady")}
    failed = re.findall(r"^FAILED (\S+) - ", stdout, re.MULTILINE)
    errors = setup_errors(stdout)
    # Whatever ran before the stop, no verdict is given: each of the three is an error.
    assert sorted(errors) == ["demo::by_p::boost", "demo::by_p::flat", "steady::by_p::lift"]
    assert result.parseoutcomes()["errors"] == 3
    result.stdout.fnmatch_lines_random(
        ["demo*by_p*boost*ERROR", "demo*by_p*flat*ERROR", "steady*by_p*lift*ERROR"]
    )
    result.stdout.no_fnmatch_line("*p=*e-0*")
    if dist == TWO_WORKERS:
        # Two workers stop when the controller sees the first failure; what each was running
        # by then is timing. What must hold: the session was stopped (xdist ends it with
        # "Interrupted", exit code 2), at least one chunk failed, only the chunks holding the
        # failing replicate did, and every verdict says why it is missing.
        assert result.ret == pytest.ExitCode.INTERRUPTED
        assert 1 <= len(failed) == result.parseoutcomes()["failed"]
        assert set(failed) <= failing, failed
        for verdict, message in errors.items():
            assert message.endswith(STOPPED) or (
                "first failure: step 'shift' raised ValueError: no data for replicate 0 "
                "(condition 'baseline', replicate 0)" in message
            ), (verdict, message)
    else:
        # One process stops right after the failing chunk, before anything else runs.
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        assert failed == ["experiment_demo.py::demo::baseline::chunk-0"]
        assert errors == {
            "demo::by_p::boost": f"chunks boost::chunk-0, flat::chunk-0 {STOPPED}",
            "demo::by_p::flat": f"chunks boost::chunk-0, flat::chunk-0 {STOPPED}",
            "steady::by_p::lift": f"chunks baseline::chunk-0, lift::chunk-0 {STOPPED}",
        }


@in_every_mode
@pytest.mark.parametrize("select", [[], ["-k", "boost"]], ids=["all", "k-boost"])
def test_progress_percentages_never_exceed_100(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    dist: list[str],
    select: list[str],
) -> None:
    write_experiment(experiments=TWO_EXPERIMENTS)
    result = ourtester.runpytest("--crystallize", "-v", *select, *dist)
    assert result.ret == (pytest.ExitCode.OK if select else pytest.ExitCode.TESTS_FAILED)
    percentages = [int(p) for p in re.findall(r"\[ *(\d+)%\]", result.stdout.str())]
    assert percentages, result.stdout.str()
    assert max(percentages) == 100
    assert percentages == sorted(percentages)
