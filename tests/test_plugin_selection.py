"""Selection and interruption: -k, --lf, --deselect, -x; never a verdict on partial data."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

MODES = [["-n", "0"], ["-n", "2"], ["-p", "no:xdist"]]
MODE_IDS = ["n0", "n2", "no-xdist"]

TWO_EXPERIMENTS = {"demo": {"boost": 5.0, "flat": 0.0}, "steady": {"lift": 5.0}}


def chunks_per_condition(dist: list[str]) -> int:
    """8 replicates of 3 conditions: one chunk per condition in one process, 3 with two
    workers (about four chunks per worker over the experiment)."""
    return 1 if dist != ["-n", "2"] else 3


@pytest.mark.parametrize("dist", MODES, ids=MODE_IDS)
def test_k_treatment_keeps_the_baseline_chunks_and_gives_only_that_verdict(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "-v", "-rA", "-k", "boost", *dist)
    chunks = chunks_per_condition(dist)
    result.assert_outcomes(passed=2 * chunks + 1)
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
    if dist != ["-n", "2"]:  # workers deselect on their own: the controller shows no count
        result.stdout.fnmatch_lines(["*collected 3 items / 1 deselected / 2 selected*"])


@pytest.mark.parametrize("dist", MODES, ids=MODE_IDS)
def test_last_failed_reruns_the_experiment_of_a_failed_verdict_and_not_the_others(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment(experiments=TWO_EXPERIMENTS)
    # Chunks: demo has 3 conditions, steady 2; with two workers 3 and 4 chunks per condition.
    demo_chunks, steady_chunks = (9, 8) if dist == ["-n", "2"] else (3, 2)
    first = ourtester.runpytest("--crystallize", *dist)
    first.assert_outcomes(passed=demo_chunks + steady_chunks + 2, failed=1)
    first.stdout.fnmatch_lines(["FAILED p=1 experiment_demo.py::demo::by_p::flat - *"])

    again = ourtester.runpytest("--crystallize", "--lf", "-v", "-rA", *dist)
    # All of demo's chunks and both its verdicts; nothing of steady.
    again.assert_outcomes(passed=demo_chunks + 1, failed=1)
    assert again.ret == pytest.ExitCode.TESTS_FAILED
    again.stdout.fnmatch_lines_random(
        [
            "*PASSED experiment_demo.py::demo::baseline::chunk-0",
            "*PASSED experiment_demo.py::demo::boost::chunk-0",
            "*PASSED experiment_demo.py::demo::flat::chunk-0",
            "*experiment_demo.py::demo::by_p::boost PASSED p=*",
            "*experiment_demo.py::demo::by_p::flat FAILED p=1 *",
        ]
    )
    again.stdout.no_fnmatch_line("*steady*")


SKIP_REASON = (
    "not every replicate was selected ({chunks} deselected); a verdict needs all of them: "
    "select whole experiments or conditions"
)


def test_a_deselected_baseline_chunk_skips_the_verdicts_naming_the_chunk(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment()
    deselect = "experiment_demo.py::demo::baseline::chunk-0"
    result = ourtester.runpytest("--crystallize", "-rA", "--deselect", deselect, "-n", "2")
    # 3 chunks per condition with two workers; baseline::chunk-1 and chunk-2 still run.
    result.assert_outcomes(passed=8, skipped=2)
    assert result.ret == pytest.ExitCode.OK
    reason = SKIP_REASON.format(chunks="baseline::chunk-0")
    result.stdout.fnmatch_lines_random(
        [
            f"SKIPPED [[]1[]] experiment_demo.py: demo::by_p::boost: {reason}",
            f"SKIPPED [[]1[]] experiment_demo.py: demo::by_p::flat: {reason}",
        ]
    )
    result.stdout.fnmatch_lines(
        ["=* crystallize *=", "*", "demo*by_p*boost*SKIPPED", "demo*by_p*flat*SKIPPED"]
    )
    result.stdout.no_fnmatch_line("*PASSED p=*")


def test_a_deselected_treatment_chunk_skips_the_experiments_verdicts_naming_it(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment()
    deselect = "experiment_demo.py::demo::boost::chunk-1"
    result = ourtester.runpytest("--crystallize", "-rA", "--deselect", deselect, "-n", "2")
    # Hypotheses are evaluated over all treatments together, so a partly selected condition
    # leaves the whole experiment without verdicts (flat's included), each saying why.
    result.assert_outcomes(passed=8, skipped=2)
    reason = SKIP_REASON.format(chunks="boost::chunk-1")
    result.stdout.fnmatch_lines_random(
        [
            f"SKIPPED [[]1[]] experiment_demo.py: demo::by_p::boost: {reason}",
            f"SKIPPED [[]1[]] experiment_demo.py: demo::by_p::flat: {reason}",
        ]
    )


@pytest.mark.parametrize("dist", MODES, ids=MODE_IDS)
def test_deselecting_the_whole_baseline_skips_the_verdicts_instead_of_dropping_them(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "-rA", "-k", "not baseline", *dist)
    chunks = chunks_per_condition(dist)
    # The treatments' chunks ran; their verdicts cannot be given, and the user must be told.
    result.assert_outcomes(passed=2 * chunks, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] experiment_demo.py: demo::by_p::boost: not every replicate was "
            "selected (baseline::*"
        ]
    )


@pytest.mark.parametrize("dist", MODES, ids=MODE_IDS)
def test_with_x_a_failing_first_chunk_turns_every_verdict_into_an_error_saying_what_did_not_run(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment(
        experiments=TWO_EXPERIMENTS,
        step_code="""
            if ctx["condition"] == "baseline" and ctx["replicate"] == 0:
                raise ValueError("no data for replicate 0")
        """,
    )
    result = ourtester.runpytest("--crystallize", "-rA", "-x", *dist)
    # xdist ends a session stopped by -x with "Interrupted" (exit code 2), pytest with 1.
    stopped_code = 2 if dist == ["-n", "2"] else pytest.ExitCode.TESTS_FAILED
    assert result.ret == stopped_code
    outcomes = result.parseoutcomes()
    assert (outcomes["failed"], outcomes["errors"]) == (1, 3)
    result.stdout.fnmatch_lines(["FAILED experiment_demo.py::demo::baseline::chunk-0 - *"])
    stopped = (
        "did not run: the session stopped first (-x, --maxfail, an interrupt or a crash); "
        "no verdict"
    )
    result.stdout.fnmatch_lines_random(
        [
            "*_ ERROR at setup of demo::by_p::boost _*",
            "*_ ERROR at setup of demo::by_p::flat _*",
            "*_ ERROR at setup of steady::by_p::lift _*",
            f"chunks *lift::chunk-0* {stopped}",
            "demo*by_p*boost*ERROR",
            "demo*by_p*flat*ERROR",
            "steady*by_p*lift*ERROR",
        ]
    )
    if dist != ["-n", "2"]:  # one process stops right after the failing chunk
        result.stdout.fnmatch_lines_random([f"chunks boost::chunk-0, flat::chunk-0 {stopped}"])
        result.stdout.fnmatch_lines_random([f"chunks baseline::chunk-0, lift::chunk-0 {stopped}"])


@pytest.mark.parametrize("dist", MODES, ids=MODE_IDS)
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
