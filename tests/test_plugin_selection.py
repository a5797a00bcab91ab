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
        result.stdout.fnmatch_lines(["*collected 3 items / 1 deselected / 2 selected*"])


@in_every_mode
def test_last_failed_reruns_the_experiment_of_a_failed_verdict_and_not_the_others(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment(experiments=TWO_EXPERIMENTS)
    # Chunks: demo has 3 conditions, steady 2; with two workers 3 and 4 chunks per condition.
    demo_chunks, steady_chunks = (9, 8) if dist == TWO_WORKERS else (3, 2)
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


@pytest.mark.parametrize(
    "chunk",
    [
        # baseline::chunk-1 and chunk-2 still run.
        pytest.param("baseline::chunk-0", id="baseline"),
        # Hypotheses are evaluated over all treatments together, so a partly selected
        # condition leaves the whole experiment without verdicts (flat's included).
        pytest.param("boost::chunk-1", id="treatment"),
    ],
)
def test_a_deselected_chunk_skips_the_experiments_verdicts_naming_it(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], chunk: str
) -> None:
    write_experiment()
    deselect = f"experiment_demo.py::demo::{chunk}"
    result = ourtester.runpytest("--crystallize", "-rA", "--deselect", deselect, *TWO_WORKERS)
    # 3 chunks per condition with two workers: 9, less the deselected one, and two skips.
    result.assert_outcomes(passed=8, skipped=2)
    assert result.ret == pytest.ExitCode.OK
    reason = SKIP_REASON.format(chunks=chunk)
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


@in_every_mode
def test_deselecting_the_whole_baseline_skips_the_verdicts_instead_of_dropping_them(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "-rA", "-k", "not baseline", *dist)
    # The treatments' chunks ran; their verdicts cannot be given, and the user must be told.
    result.assert_outcomes(passed=2 * chunks(dist, CHUNKS_WITH_WORKERS), skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] experiment_demo.py: demo::by_p::boost: not every replicate was "
            "selected (baseline::*"
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
