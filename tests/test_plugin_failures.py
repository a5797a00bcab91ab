"""Failures of the user's code: the chunk fails with the user's traceback, verdicts say why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _support import TWO_WORKERS, in_every_mode, line_of

from pytest_crystallize import (
    Experiment,
    Hypothesis,
    RunError,
    RunResult,
    data_source,
    pipeline_step,
    treatment,
)
from pytest_crystallize._report.judge import judge

FAILING_STEP = """
    if ctx["condition"] == "boost" and ctx["replicate"] in (1, 4):
        raise ValueError(f"sensor {ctx['replicate']} returned garbage")
"""


@in_every_mode
def test_a_step_that_raises_fails_its_chunk_with_the_users_traceback(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    path = write_experiment(replicates=6, step_code=FAILING_STEP)
    raise_line = line_of(path, "raise ValueError")
    result = ourtester.runpytest("--crystallize", "-rA", *dist)
    if dist == TWO_WORKERS:
        # 3 chunks of 2 per condition: replicate 1 is in chunk-0, replicate 4 in chunk-2.
        result.assert_outcomes(passed=7, failed=2, errors=2)
        result.stdout.fnmatch_lines_random(
            [
                "FAILED experiment_demo.py::demo::boost::chunk-0 - 1 of 2 runs in this chunk*",
                "FAILED experiment_demo.py::demo::boost::chunk-2 - 1 of 2 runs in this chunk*",
            ]
        )
    else:
        result.assert_outcomes(passed=2, failed=1, errors=2)
        result.stdout.fnmatch_lines(["2 of 6 runs in this chunk failed:"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for replicate in (1, 4):
        result.stdout.fnmatch_lines(
            [
                f"replicate {replicate}: step 'shift' raised ValueError: sensor {replicate} "
                f"returned garbage (condition 'boost', replicate {replicate})",
                "Traceback (most recent call last):",
                f'  File "*experiment_demo.py", line {raise_line}, in shift',
                "    raise ValueError(f\"sensor {ctx['replicate']} returned garbage\")",
                f"ValueError: sensor {replicate} returned garbage",
            ]
        )
    # Framework frames are hidden: the user sees only their own code.
    result.stdout.no_fnmatch_line("*pytest_crystallize/_experiment.py*")
    result.stdout.no_fnmatch_line("*pytest_crystallize[/\\]*")


@in_every_mode
def test_failed_replicates_turn_the_verdicts_into_errors_counting_them_per_condition(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment(replicates=6, step_code=FAILING_STEP)
    result = ourtester.runpytest("--crystallize", "-rA", *dist)
    message = (
        "2 of 6 replicates of condition 'boost' failed, so no verdict is given on partial "
        "data; first failure: step 'shift' raised ValueError: sensor 1 returned garbage "
        "(condition 'boost', replicate 1) (see the failed chunk for the traceback)"
    )
    result.stdout.fnmatch_lines_random(
        [
            "*_ ERROR at setup of demo::by_p::boost _*",
            "*_ ERROR at setup of demo::by_p::flat _*",
            message,
            "ERROR experiment_demo.py::demo::by_p::boost - 2 of 6 replicates of condition*",
            "ERROR experiment_demo.py::demo::by_p::flat - 2 of 6 replicates of condition*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["=* crystallize *=", "*verdict", "demo*by_p*boost*ERROR", "demo*by_p*flat*ERROR"]
    )
    result.stdout.no_fnmatch_line("*p=*e-0*")  # no verdict on the data that did come back


@data_source
def zero(ctx):
    return 0.0


@pipeline_step()
def passthrough(value, ctx):
    return value, {"score": value}


def failed_run(condition: str, replicate: int) -> RunResult:
    error = RunError(condition, replicate, "step", "shift", "ValueError", "garbage", "")
    return RunResult(condition, replicate, replicate, {}, error=error)


def test_the_first_failure_quoted_is_first_in_condition_then_replicate_order_not_arrival() -> None:
    experiment = (
        Experiment.builder("demo")
        .datasource(zero())
        .add_step(passthrough())
        .treatments([treatment("boost", {}), treatment("flat", {})])
        .hypotheses([Hypothesis(verifier=lambda b, t: {"passed": True}, metrics="score")])
        .replicates(6)
        .build()
    )
    # As chunks may come back under xdist: flat's before boost's, boost's chunk-2 before chunk-0.
    arrival = [failed_run("flat", 5), failed_run("boost", 4), failed_run("boost", 1)]
    expected = (
        "2 of 6 replicates of condition 'boost', 1 of 6 replicates of condition 'flat' failed, "
        "so no verdict is given on partial data; first failure: step 'shift' raised "
        "ValueError: garbage (condition 'boost', replicate 1) (see the failed chunk for the "
        "traceback)"
    )
    for runs in (arrival, arrival[::-1]):
        verdicts = judge("demo", experiment, runs, ["boost", "flat"])
        assert [(v.treatment, v.outcome, v.message) for v in verdicts] == [
            ("boost", "error", expected),
            ("flat", "error", expected),
        ]


def test_failures_in_several_conditions_are_counted_for_each(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(
        replicates=6,
        step_code="""
            broken = ctx["condition"] == "boost" and ctx["replicate"] == 3
            if ctx["condition"] == "flat" or broken:
                raise KeyError("missing column")
        """,
    )
    result = ourtester.runpytest("--crystallize")
    result.assert_outcomes(passed=1, failed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "1 of 6 replicates of condition 'boost', 6 of 6 replicates of condition 'flat' "
            "failed, so no verdict is given on partial data; first failure: *"
        ]
    )


def test_a_verifier_that_raises_gives_an_error_verdict_naming_it(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(experiments={"demo": {"boost": 5.0}}, returns="1 / 0")
    result = ourtester.runpytest("--crystallize", "-rA")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "verifier 'welch' of hypothesis 'by_p' raised ZeroDivisionError: division by zero "
            "(treatment 'boost', metrics ['score'], 8 complete replicates)",
        ]
    )


def test_a_metric_no_step_records_gives_an_error_verdict_naming_it(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    path = write_experiment(experiments={"demo": {"boost": 5.0}})
    path.write_text(path.read_text().replace('{"score": value + delta}', '{"points": value}'))
    result = ourtester.runpytest("--crystallize", "-rA")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "experiment 'demo': hypothesis 'by_p' needs metric 'score', which no run of "
            "condition 'baseline' recorded; recorded metrics: 'points'*",
        ]
    )
