"""Decisions at their boundary: a p-value exactly equal to alpha does not pass.

``p < alpha`` passes and ``p >= alpha`` fails, in the built-in verifiers' decision and in the
judge's family-correction check alike. These tests pin the boundary, so that ``<`` turned
into ``<=`` (or ``>=`` into ``>``) fails them.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_crystallize import (
    BASELINE_CONDITION,
    Experiment,
    Hypothesis,
    RunResult,
    data_source,
    pipeline_step,
    stats,
    treatment,
    verifier,
)
from pytest_crystallize._engine.hypotheses import Samples
from pytest_crystallize._report.judge import judge

BASELINE = [10.1, 9.7, 10.4, 9.9, 10.0, 10.3, 9.8, 10.2]
TREATED = [10.6, 9.9, 11.0, 10.3, 10.2, 11.1, 10.1, 10.5]


def samples(values: list[float]) -> Samples:
    """``{"m": values}`` with the seeds of paired replicates."""
    s = Samples({"m": values})
    s.seeds = tuple(range(len(values)))
    return s


# --- the built-in verifiers' decision -------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [
        stats.welch_t_test,
        stats.paired_t_test,
        stats.mann_whitney,
        stats.wilcoxon,
        stats.permutation_test,
        stats.bootstrap_ci,
        stats.auto,
    ],
    ids=lambda f: f.name,
)
def test_a_p_value_exactly_equal_to_alpha_fails_a_built_in_verifier(factory: Any) -> None:
    b, t = samples(BASELINE), samples(TREATED)
    p = factory(alpha=0.5)(b, t).pvalue  # every built-in is deterministic: exact or seeded
    assert 0 < p < 1, p

    at_alpha = factory(alpha=p)(b, t)
    assert at_alpha.pvalue == p
    assert at_alpha.outcome == "failed", at_alpha.reason
    assert not at_alpha.significant
    assert ">= alpha" in at_alpha.reason

    above = factory(alpha=math.nextafter(p, 1.0))(b, t)  # the smallest alpha p is below
    assert above.outcome == "passed", above.reason
    assert "< alpha" in above.reason


# --- the judge's family correction ----------------------------------------------------------


@data_source
def replicate_index(ctx: Any) -> int:
    return int(ctx["replicate"])


@pipeline_step()
def record(index: int, ctx: Any) -> tuple[int, dict[str, float]]:
    return index, {"m": float(index)}


@verifier
def states_p(baseline: Any, treatment: Any, alpha: float = 0.25) -> dict[str, Any]:
    """A verifier whose p-value is the treatment's metric: the test chooses it exactly."""
    p = float(treatment["m"][0])
    return {"p_value": p, "significant": p < alpha, "alpha": alpha}


def judged(alpha: float) -> dict[str, Any]:
    """Verdicts of a family of two (Bonferroni): raw p 0.125 (adjusted 0.25) and 0.75."""
    experiment = (
        Experiment.builder("boundary")
        .datasource(replicate_index())
        .add_step(record())
        .treatments([treatment("border", {}), treatment("flat", {})])
        .hypotheses([Hypothesis(verifier=states_p(alpha=alpha), metrics="m", name="h")])
        .replicates(3)
        .correction("bonferroni")
        .build()
    )
    values = {BASELINE_CONDITION: 0.5, "border": 0.125, "flat": 0.75}
    runs = [
        RunResult(condition, i, 1000 + i, {"m": (value,)})
        for condition, value in values.items()
        for i in range(3)
    ]
    return {v.treatment: v for v in judge("boundary", experiment, runs, ["border", "flat"])}


def test_an_adjusted_p_value_exactly_equal_to_alpha_fails_the_verdict() -> None:
    verdicts = judged(alpha=0.25)
    border = verdicts["border"]
    assert (border.pvalue, border.pvalue_adjusted, border.alpha) == (0.125, 0.25, 0.25)
    assert border.outcome == "failed", border.message
    assert "not after bonferroni correction over 2 comparisons" in border.message


def test_an_adjusted_p_value_just_below_alpha_passes_the_verdict() -> None:
    alpha = math.nextafter(0.25, 1.0)
    verdicts = judged(alpha=alpha)
    border = verdicts["border"]
    assert (border.pvalue, border.pvalue_adjusted, border.alpha) == (0.125, 0.25, alpha)
    assert border.outcome == "passed", border.message


# --- a hypothesis over metric groups --------------------------------------------------------


@pipeline_step()
def two_metrics(index: int, ctx: Any) -> tuple[int, dict[str, float]]:
    return index, {"a": float(index), "b": float(index)}


@verifier
def group_says(baseline: Any, treatment: Any) -> dict[str, Any]:
    """Metric ``a``: a clear failure; metric ``b``: an inconclusive gate."""
    if "a" in treatment:
        return {"p_value": 0.9, "significant": False}
    return {"p_value": 0.2, "outcome": "inconclusive", "reason": "the CI straddles the margin"}


@pytest.mark.parametrize("groups", [[["a"], ["b"]], [["b"], ["a"]]], ids=["a-first", "b-first"])
def test_a_failed_group_fails_the_verdict_even_beside_an_inconclusive_one(
    groups: list[list[str]],
) -> None:
    experiment = (
        Experiment.builder("groups")
        .datasource(replicate_index())
        .add_step(two_metrics())
        .treatments([treatment("new", {})])
        .hypotheses([Hypothesis(verifier=group_says(), metrics=groups, name="h")])
        .replicates(3)
        .build()
    )
    runs = [
        RunResult(condition, i, 1000 + i, {"a": (1.0,), "b": (1.0,)})
        for condition in (BASELINE_CONDITION, "new")
        for i in range(3)
    ]
    (verdict,) = judge("groups", experiment, runs, ["new"])
    assert verdict.outcome == "failed", verdict.message
