"""A hypothesis over several metrics: each metric shows its own p-value and outcome.

With ``metrics=[["a"], ["b"]]`` the verifier is called once per metric and the verdict is
the worst of the calls (failed > error > inconclusive > passed). The verdict's numbers (its
p-value, means, the metric named first) are those of the metric that decided it, and the
message lists every metric's outcome and p-value: never one metric's p-value next to the
other's FAILED.
"""

from __future__ import annotations

from typing import Any

import pytest
from _support import with_and_without_workers

from pytest_crystallize import (
    BASELINE_CONDITION,
    Experiment,
    Hypothesis,
    RunResult,
    data_source,
    pipeline_step,
    treatment,
    verifier,
)
from pytest_crystallize._engine.verdict import Verdict
from pytest_crystallize._report.judge import judge

# a: 0, 1, 2 in baseline, +1 in "new"; b: 0, 10, 20 in baseline, +5 in "new"
VALUES = {
    "a": {BASELINE_CONDITION: [0.0, 1.0, 2.0], "new": [1.0, 2.0, 3.0]},
    "b": {BASELINE_CONDITION: [0.0, 10.0, 20.0], "new": [5.0, 15.0, 25.0]},
}

PASS = {"p_value": 0.01, "significant": True}
FAIL = {"p_value": 0.9, "significant": False}
INCONCLUSIVE = {"p_value": 0.2, "outcome": "inconclusive", "reason": "the CI straddles 0"}
ERROR = {"p_value": 2.0, "significant": True}


@data_source
def replicate_index(ctx: Any) -> int:
    return int(ctx["replicate"])


@pipeline_step()
def record(index: int, ctx: Any) -> tuple[int, dict[str, float]]:
    return index, {"a": float(index), "b": float(index)}


def judged(says: dict[str, dict[str, Any]], metrics: Any = (("a",), ("b",))) -> Verdict:
    """The verdict of a verifier that returns ``says[metric]`` for the metric it is given
    (``says["a,b"]`` when given both at once)."""

    @verifier
    def per_metric(baseline: Any, treatment: Any) -> dict[str, Any]:
        return says[",".join(sorted(treatment))]

    spec = [list(g) for g in metrics] if isinstance(metrics, tuple) else metrics
    experiment = (
        Experiment.builder("multi")
        .datasource(replicate_index())
        .add_step(record())
        .treatments([treatment("new", {})])
        .hypotheses([Hypothesis(verifier=per_metric(), metrics=spec, name="h")])
        .replicates(3)
        .build()
    )
    runs = [
        RunResult(condition, i, 1000 + i, {m: (VALUES[m][condition][i],) for m in VALUES})
        for condition in (BASELINE_CONDITION, "new")
        for i in range(3)
    ]
    (verdict,) = judge("multi", experiment, runs, ["new"])
    return verdict


HEAD = "hypothesis 'h', treatment 'new' vs baseline on "


@pytest.mark.parametrize("order", [(("a",), ("b",)), (("b",), ("a",))], ids=["a-b", "b-a"])
def test_a_failed_metric_shows_its_own_p_value_and_is_named(order: Any) -> None:
    verdict = judged({"a": PASS, "b": FAIL}, order)
    assert verdict.outcome == "failed"
    assert verdict.pvalue == 0.9
    assert verdict.metrics == ("b", "a")  # the metric the numbers describe comes first
    assert (verdict.mean_baseline, verdict.mean_treatment) == (10.0, 15.0)
    per_metric = (
        "'a': passed, p=0.01; 'b': failed, p=0.9"
        if order[0] == ("a",)
        else "'b': failed, p=0.9; 'a': passed, p=0.01"
    )
    adjusted = "(adjusted 0.9, holm)"
    assert verdict.message.splitlines()[:3] == [
        HEAD + "'b': per_metric did not pass (significant=False)",
        f"  p=0.9 {adjusted}, alpha=n/a, n=3 vs 3, means of 'b' 10 vs 15",
        f"  per metric: {per_metric}",
    ]


def test_when_every_metric_passes_the_first_metric_s_numbers_are_shown_with_each_outcome() -> None:
    verdict = judged({"a": PASS, "b": {"p_value": 0.02, "significant": True}})
    assert verdict.outcome == "passed"
    assert verdict.pvalue == 0.01
    assert verdict.metrics == ("a", "b")
    assert verdict.message.splitlines() == [
        "per_metric: p=0.01 (adjusted 0.02, holm), alpha=n/a, n=3 vs 3, means of 'a' 1 vs 2",
        "  per metric: 'a': passed, p=0.01; 'b': passed, p=0.02",
    ]


@pytest.mark.parametrize(
    ("a", "b", "expected", "deciding"),
    [
        (ERROR, FAIL, "failed", "b"),
        (FAIL, ERROR, "failed", "a"),
        (ERROR, INCONCLUSIVE, "error", "a"),
        (INCONCLUSIVE, ERROR, "error", "b"),
        (INCONCLUSIVE, PASS, "inconclusive", "a"),
        (PASS, ERROR, "error", "b"),
    ],
)
def test_groups_combine_failed_over_error_over_inconclusive_over_passed(
    a: dict[str, Any], b: dict[str, Any], expected: str, deciding: str
) -> None:
    verdict = judged({"a": a, "b": b})
    assert verdict.outcome == expected, verdict.message
    assert verdict.metrics[0] == deciding
    assert verdict.message.startswith(f"{HEAD}'{deciding}': per_metric")


def test_an_error_metric_beside_an_inconclusive_one_says_which_and_why() -> None:
    verdict = judged({"a": INCONCLUSIVE, "b": ERROR})
    assert verdict.pvalue is None
    assert verdict.message.splitlines()[:3] == [
        HEAD + "'b': per_metric could not decide (verifier 'per_metric' returned "
        "p_value=2.0, outside [0, 1]; a p-value is a probability: return a number between 0 "
        "and 1)",
        "  p=n/a, alpha=n/a, n=3 vs 3, means of 'b' 10 vs 15",
        "  per metric: 'a': inconclusive, p=0.2; 'b': error, p=n/a",
    ]


def test_one_group_of_two_metrics_names_both_and_says_whose_means_are_shown() -> None:
    verdict = judged({"a,b": FAIL}, metrics=["a", "b"])
    assert verdict.outcome == "failed"
    assert verdict.metrics == ("a", "b")
    assert verdict.message.splitlines()[:2] == [
        HEAD + "'a', 'b': per_metric did not pass (significant=False)",
        "  p=0.9, alpha=n/a, n=3 vs 3, means of 'a' 1 vs 2",
    ]


# --- in a session -------------------------------------------------------------------------

SESSION = """\
from pytest_crystallize import Experiment, Hypothesis, data_source, pipeline_step, treatment
from pytest_crystallize import verifier

TABLE = {table!r}


@data_source
def replicate_index(ctx):
    return ctx["replicate"]


@pipeline_step()
def lookup(index, ctx):
    row = TABLE[ctx["condition"]]
    return index, {{"a": row["a"][index], "b": row["b"][index]}}


@verifier
def per_metric(baseline, treatment):
    (name,) = treatment
    return {{"a": {{"p_value": 0.01, "significant": True}},
             "b": {{"p_value": 0.9, "significant": False}}}}[name]


multi = (
    Experiment.builder("multi")
    .datasource(replicate_index())
    .add_step(lookup())
    .treatments([treatment("new", {{}})])
    .hypotheses([Hypothesis(verifier=per_metric(), metrics=[["a"], ["b"]], name="h")])
    .replicates(3)
    .build()
)
"""


@with_and_without_workers
def test_the_summary_row_and_message_of_a_two_metric_verdict_agree(
    ourtester: pytest.Pytester, summary_rows: Any, dist: list[str]
) -> None:
    table = {
        condition: {m: VALUES[m][condition] for m in VALUES}
        for condition in (BASELINE_CONDITION, "new")
    }
    ourtester.makepyfile(experiment_multi=SESSION.format(table=table))
    result = ourtester.runpytest("--crystallize", "-rA", *dist)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            HEAD + "'b': per_metric did not pass (significant=False)",
            "  p=0.9 (adjusted 0.9, holm), alpha=n/a, n=3 vs 3, means of 'b' 10 vs 15",
            "  per metric: 'a': passed, p=0.01; 'b': failed, p=0.9",
        ]
    )
    row = summary_rows(result)["multi::h::new"]
    assert row["metric"] == "b,a"
    assert row["p (adj)"] == "0.9 (0.9)"
    assert row["verdict"] == "FAILED"
