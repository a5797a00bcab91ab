"""Verifier parameters are checked when the verifier is made; verifier outputs before they decide.

A built-in verifier with a bad parameter (``alpha=2``, ``n_resamples=0``, an infinite margin)
raises :class:`CrystallizeUsageError` where it is written, not after every run was computed.
A user verifier whose output cannot decide (a p-value outside [0, 1], ``significant`` as the
string ``"False"``, neither ``passed`` nor ``significant``) gives an ``error`` verdict naming
the verifier and echoing the value: never a pass, and never a fail that reads as a result.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _support import with_and_without_workers

from pytest_crystallize import (
    BASELINE_CONDITION,
    CrystallizeUsageError,
    Experiment,
    Hypothesis,
    RunResult,
    data_source,
    pipeline_step,
    stats,
    treatment,
    verifier,
)
from pytest_crystallize._engine.hypotheses import output_pvalue, rank_by_p_value
from pytest_crystallize._report.judge import judge

# --- parameters, checked when the verifier is made --------------------------------------------

ALPHA = (
    "{name}(alpha=...) takes a significance level strictly between 0 and 1, got {value}; "
    "write for example {name}(alpha=0.05)"
)
BUILT_INS = [
    stats.welch_t_test,
    stats.paired_t_test,
    stats.mann_whitney,
    stats.wilcoxon,
    stats.permutation_test,
    stats.bootstrap_ci,
    stats.auto,
]


@pytest.mark.parametrize("factory", BUILT_INS, ids=lambda f: f.name)
@pytest.mark.parametrize("alpha", [2, 1, 0, -0.1, 1.0, math.nan, math.inf, True, "0.05", None])
def test_a_bad_alpha_is_refused_when_the_verifier_is_made(factory: Any, alpha: Any) -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        factory(alpha=alpha)
    assert str(info.value) == ALPHA.format(name=factory.name, value=repr(alpha))


def test_welch_with_alpha_2_no_longer_builds_and_passes_a_test_with_p_0_936() -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        stats.welch_t_test(alpha=2)
    assert str(info.value) == (
        "welch_t_test(alpha=...) takes a significance level strictly between 0 and 1, got 2; "
        "write for example welch_t_test(alpha=0.05)"
    )


@pytest.mark.parametrize("factory", [stats.non_inferior, stats.equivalent], ids=lambda f: f.name)
@pytest.mark.parametrize("alpha", [0.5, 0.7])
def test_a_gate_refuses_an_alpha_whose_1_minus_2_alpha_interval_is_empty(
    factory: Any, alpha: float
) -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        factory(margin=1.0, alpha=alpha)
    assert str(info.value) == (
        f"{factory.name}(alpha=...) takes a level below 0.5 (the gate decides on the "
        f"(1 - 2 alpha) interval), got {alpha!r}; write for example {factory.name}(alpha=0.05)"
    )


@pytest.mark.parametrize("factory", [stats.non_inferior, stats.equivalent], ids=lambda f: f.name)
@pytest.mark.parametrize("margin", [math.inf, -math.inf, math.nan, 0, -1.0, True, "2%"])
def test_a_margin_must_be_a_positive_finite_number(factory: Any, margin: Any) -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        factory(margin=margin)
    assert str(info.value) == (
        f"{factory.name}(margin=...) takes a positive number, finite (in the metric's units, "
        f"or a fraction of the baseline mean with relative=True), got {margin!r}"
    )


@pytest.mark.parametrize("factory", [stats.permutation_test, stats.bootstrap_ci])
@pytest.mark.parametrize("resamples", [0, -5, 2.5, True, "999"])
def test_n_resamples_must_be_a_positive_int(factory: Any, resamples: Any) -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        factory(n_resamples=resamples)
    assert str(info.value) == (
        f"{factory.name}(n_resamples=...) takes a positive int (at most 4999 are drawn), "
        f"got {resamples!r}"
    )


def test_a_numpy_int_is_a_fine_n_resamples() -> None:
    assert stats.permutation_test(n_resamples=np.int64(999)).params == {"n_resamples": 999}


def test_an_unknown_statistic_is_refused_when_the_bootstrap_is_made() -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        stats.bootstrap_ci(statistic="mode")
    assert str(info.value) == "bootstrap_ci(statistic=...) takes 'mean' or 'median', got 'mode'"


@pytest.mark.parametrize("factory", BUILT_INS, ids=lambda f: f.name)
def test_an_unknown_alternative_is_refused_when_the_verifier_is_made(factory: Any) -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        factory(alternative="bigger")
    assert str(info.value) == (
        f"{factory.name}(alternative=...) takes one of ('two-sided', 'greater', 'less'), "
        f"got 'bigger'"
    )


@pytest.mark.parametrize(
    ("factory", "flag", "value", "takes"),
    [
        (stats.non_inferior, "relative", "yes", "True or False"),
        (stats.non_inferior, "higher_is_better", 0, "True or False"),
        (stats.equivalent, "relative", None, "True or False"),
    ],
)
def test_a_gate_flag_must_be_a_bool(factory: Any, flag: str, value: Any, takes: str) -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        factory(margin=1.0, **{flag: value})
    assert str(info.value) == f"{factory.name}({flag}=...) takes {takes}, got {value!r}"


@pytest.mark.parametrize("factory", [stats.permutation_test, stats.bootstrap_ci])
def test_paired_must_be_true_false_or_none(factory: Any) -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        factory(paired="yes")
    assert str(info.value) == (
        f"{factory.name}(paired=...) takes True, False or None (pair when the replicates "
        f"share seeds), got 'yes'"
    )


@pytest.mark.parametrize(
    "made",
    [
        stats.welch_t_test(alpha=0.01, alternative="greater"),
        stats.bootstrap_ci(statistic="median", paired=False, n_resamples=99),
        stats.non_inferior(margin=0.02, relative=True, higher_is_better=False),
        stats.equivalent(margin=1.5, alpha=0.1),
    ],
    ids=repr,
)
def test_good_parameters_are_bound_and_survive_pickling(made: Any) -> None:
    again = pickle.loads(pickle.dumps(made))
    assert (again.name, again.params) == (made.name, made.params)


def test_a_user_verifier_has_no_built_in_check() -> None:
    @verifier
    def anything(baseline: Any, treatment: Any, alpha: Any = 0.05) -> dict[str, Any]:
        return {"p_value": 0.5, "significant": False}

    assert anything(alpha=7).params == {"alpha": 7}  # the user's parameters are the user's


# --- outputs, checked before they decide ------------------------------------------------------


@data_source
def replicate_index(ctx: Any) -> int:
    return int(ctx["replicate"])


@pipeline_step()
def record(index: int, ctx: Any) -> tuple[int, dict[str, float]]:
    return index, {"m": float(index)}


def judged(output: dict[str, Any]) -> Any:
    """The one verdict of a user verifier that returns ``output`` for every comparison."""

    @verifier
    def says(baseline: Any, treatment: Any) -> dict[str, Any]:
        return output

    experiment = (
        Experiment.builder("outputs")
        .datasource(replicate_index())
        .add_step(record())
        .treatments([treatment("new", {})])
        .hypotheses([Hypothesis(verifier=says(), metrics="m", name="h")])
        .replicates(3)
        .build()
    )
    runs = [
        RunResult(condition, i, 1000 + i, {"m": (float(i) + shift,)})
        for condition, shift in ((BASELINE_CONDITION, 0.0), ("new", 1.0))
        for i in range(3)
    ]
    (verdict,) = judge("outputs", experiment, runs, ["new"])
    return verdict


HEAD = "hypothesis 'h', treatment 'new' vs baseline on 'm': says could not decide ("


@pytest.mark.parametrize(
    ("output", "why"),
    [
        (
            {"p_value": 2, "significant": True},
            "verifier 'says' returned p_value=2, outside [0, 1]; a p-value is a probability: "
            "return a number between 0 and 1",
        ),
        (
            {"p_value": -1.0, "significant": True},
            "verifier 'says' returned p_value=-1.0, outside [0, 1]; a p-value is a "
            "probability: return a number between 0 and 1",
        ),
        (
            {"pvalue": math.inf, "passed": True},
            "verifier 'says' returned pvalue=inf, outside [0, 1]; a p-value is a probability: "
            "return a number between 0 and 1",
        ),
        (
            {"p_value": "0.01", "significant": True},
            "verifier 'says' returned p_value='0.01' (str); a p-value is a number between 0 "
            "and 1: return a float",
        ),
        (
            {"p_value": True, "significant": True},
            "verifier 'says' returned p_value=True (bool); a p-value is a number between 0 "
            "and 1: return a float",
        ),
        (
            {"p_value": 0.5, "significant": "False"},
            "verifier 'says' returned significant='False' (str); 'significant' decides the "
            "verdict and must be True or False: return a bool, such as {'significant': p < "
            "alpha}",
        ),
        (
            {"p_value": 0.01, "passed": "True"},
            "verifier 'says' returned passed='True' (str); 'passed' decides the verdict and "
            "must be True or False: return a bool, such as {'passed': p < alpha}",
        ),
        (
            {"p_value": 0.01, "significant": 1},
            "verifier 'says' returned significant=1 (int); 'significant' decides the verdict "
            "and must be True or False: return a bool, such as {'significant': p < alpha}",
        ),
        (
            {"p_value": 0.01},
            "the result of verifier 'says' has neither 'passed' nor 'significant' (its keys: "
            "'p_value'); return one of them so the verdict can be decided",
        ),
    ],
    ids=[
        "p=2",
        "p=-1",
        "p=inf",
        "p-string",
        "p-bool",
        "significant-string",
        "passed-string",
        "significant-int",
        "missing-key",
    ],
)
def test_an_output_that_cannot_decide_gives_an_error_verdict_naming_the_verifier(
    output: dict[str, Any], why: str
) -> None:
    verdict = judged(output)
    assert verdict.outcome == "error", verdict.message
    first, numbers, returned = verdict.message.splitlines()
    assert first == HEAD + why + ")"
    shown = {0.5: "0.5", 0.01: "0.01", None: "n/a"}[output_pvalue(output)]
    assert numbers == f"  p={shown}, alpha=n/a, n=3 vs 3, means 1 vs 2"
    assert returned == f"  the verifier returned: {output!r}"


def test_an_invalid_p_value_is_not_shown_or_adjusted_as_a_number() -> None:
    verdict = judged({"p_value": 2, "significant": True})
    assert verdict.pvalue is None
    assert verdict.pvalue_adjusted is None
    assert output_pvalue({"p_value": 2}) is None
    assert output_pvalue({"p_value": -1e-9}) is None
    assert output_pvalue({"pvalue": "0.5"}) is None
    assert output_pvalue({"p_value": np.float64(0.25)}) == 0.25
    assert rank_by_p_value({"p_value": 2}) == 1.0  # ranks last rather than raising


def test_a_numpy_bool_decides_like_a_bool() -> None:
    passed = judged({"p_value": np.float64(0.01), "significant": np.float64(0.01) < 0.05})
    assert passed.outcome == "passed", passed.message
    failed = judged({"p_value": np.float64(0.5), "significant": np.bool_(False)})
    assert failed.outcome == "failed"
    assert failed.message.splitlines()[0] == (
        "hypothesis 'h', treatment 'new' vs baseline on 'm': says did not pass (significant=False)"
    )


def test_a_nan_p_value_still_fails_saying_nothing_can_be_concluded() -> None:
    verdict = judged({"p_value": math.nan, "significant": True})
    assert verdict.outcome == "failed"
    assert verdict.message.splitlines()[0] == (
        "hypothesis 'h', treatment 'new' vs baseline on 'm': says did not pass (the p-value "
        "is nan, so nothing can be concluded)"
    )


@with_and_without_workers
@pytest.mark.parametrize(
    ("returns", "why"),
    [
        (
            '{"p_value": 2.0, "significant": True}',
            "verifier 'welch' returned p_value=2.0, outside [[]0, 1[]]; a p-value is a "
            "probability: return a number between 0 and 1",
        ),
        (
            '{"p_value": p_value, "significant": "False"}',
            "verifier 'welch' returned significant='False' (str); 'significant' decides the "
            "verdict and must be True or False: return a bool, such as {'significant': p < "
            "alpha}",
        ),
    ],
    ids=["p=2", "significant-string"],
)
def test_an_invalid_output_is_an_error_in_the_session(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    dist: list[str],
    returns: str,
    why: str,
) -> None:
    write_experiment(experiments={"demo": {"boost": 5.0}}, returns=returns)
    result = ourtester.runpytest("--crystallize", "-rA", *dist)
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 1, result.stdout.str()
    assert "failed" not in outcomes
    result.stdout.fnmatch_lines(
        [
            f"hypothesis 'by_p', treatment 'boost' vs baseline on 'score': welch could not "
            f"decide ({why})",
            "ERROR experiment_demo.py::demo::by_p::boost - *",
        ]
    )
