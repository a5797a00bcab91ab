"""@verifier, @hypothesis, Hypothesis: parameters, metric groups, ranking, errors, warnings."""

from __future__ import annotations

import re
import warnings
from statistics import mean
from typing import Any

import pytest
from _support import raises_message

from pytest_crystallize import (
    CrystallizeUsageError,
    Experiment,
    ExperimentDefinitionError,
    Hypothesis,
    HypothesisError,
    MissingMetricError,
    VerifierCallable,
    data_source,
    hypothesis,
    pipeline_step,
    rank_by_p_value,
    treatment,
    verifier,
)

pytestmark = pytest.mark.usefixtures("in_tmp_path")


@data_source
def zeros(ctx):
    return [0.0, 0.0]


@pipeline_step
def measure(data, ctx, *, delta=0.0, p=0.5):
    noise = ctx["replicate"] * 0.1
    return data, {
        "total": sum(data) + delta + noise,
        "count": len(data) + noise,
        "p": p,
    }


@verifier
def mean_difference(baseline, treatment, alpha: float = 0.05):
    diffs = {m: mean(treatment[m]) - mean(baseline[m]) for m in treatment}
    p_value = treatment["p"][0] if "p" in treatment else 0.5
    return {"p_value": p_value, "significant": p_value < alpha, "diffs": diffs}


@verifier
def needs_threshold(baseline, treatment, *, threshold):
    return {"p_value": 0.5, "threshold": threshold}


@verifier()
def seen_metrics(baseline, treatment):
    return {"p_value": 0.5, "metrics": sorted(baseline), "n": len(next(iter(baseline.values())))}


@verifier
def returns_list(baseline, treatment):
    return [0.1]


@verifier
def divides_by_zero(baseline, treatment):
    return {"p_value": 1 / 0}


@verifier
def warns_once(baseline, treatment):
    warnings.warn("precision loss", RuntimeWarning, stacklevel=1)
    return {"p_value": 0.5}


@verifier
def warns_twice(baseline, treatment):
    for _ in range(2):
        warnings.warn("precision loss", RuntimeWarning, stacklevel=1)
    return {"p_value": 0.5}


class Verdict:
    def __init__(self, p_value: float) -> None:
        self.p_value = p_value

    def as_dict(self) -> dict[str, Any]:
        return {"p_value": self.p_value}


@verifier
def returns_object(baseline, treatment):
    return Verdict(treatment["p"][0])


@hypothesis(verifier=mean_difference(), metrics="total")
def biggest_total_first(result):
    return -result["diffs"]["total"]


THREE_TREATMENTS = [
    treatment("small", {"delta": 1.0, "p": 0.2}),
    treatment("big", {"delta": 3.0, "p": 0.4}),
    treatment("tiny", {"delta": 0.5, "p": 0.01}),
]


def run_with(*hypotheses: Any, treatments: Any = None, replicates: int = 3):
    return Experiment(
        zeros(),
        [measure()],
        name="hyp",
        treatments=THREE_TREATMENTS if treatments is None else treatments,
        hypotheses=list(hypotheses),
        replicates=replicates,
    ).run()


# --- verifier factories -------------------------------------------------------------------


def test_a_verifier_factory_rejects_an_unknown_parameter():
    with raises_message(
        CrystallizeUsageError,
        "mean_difference() got an unknown parameter 'alpah' (=0.1); it accepts: alpha",
    ):
        mean_difference(alpah=0.1)


def test_a_verifier_factory_requires_its_parameters_without_defaults():
    with raises_message(
        CrystallizeUsageError,
        "needs_threshold() needs parameter 'threshold': write needs_threshold(threshold=...)",
    ):
        needs_threshold()
    with pytest.raises(CrystallizeUsageError, match=re.escape("needs parameter 'threshold'")):
        hypothesis(verifier=needs_threshold, metrics="total")(rank_by_p_value)
    bound = needs_threshold(threshold=2)
    assert isinstance(bound, VerifierCallable)
    assert bound({"total": [1]}, {"total": [2]}) == {"p_value": 0.5, "threshold": 2}


def test_a_hypothesis_accepts_the_uncalled_verifier_factory():
    @hypothesis(verifier=mean_difference, metrics=["total", "p"])
    def by_p(result):
        return result["p_value"]

    result = run_with(by_p)
    evaluated = result.get_hypothesis("by_p")
    assert evaluated is not None
    assert evaluated.results["big"]["diffs"]["total"] == pytest.approx(3.0)
    assert evaluated.results["tiny"]["significant"] is True


def test_a_verifier_parameter_bound_by_the_factory_reaches_the_verifier():
    strict = Hypothesis(
        verifier=mean_difference(alpha=0.001), metrics=["total", "p"], name="strict"
    )
    result = run_with(strict)
    assert result.get_hypothesis("strict").results["tiny"]["significant"] is False


# --- metric groups ------------------------------------------------------------------------


def test_a_list_of_metric_lists_gives_one_output_per_group():
    grouped = Hypothesis(verifier=seen_metrics, metrics=[["total"], ["count", "p"]], name="grouped")
    result = run_with(grouped, treatments=[THREE_TREATMENTS[0]])
    output = result.get_hypothesis("grouped").results["small"]
    assert isinstance(output, list)
    assert [o["metrics"] for o in output] == [["total"], ["count", "p"]]
    assert all(o["n"] == 3 for o in output)


def test_a_flat_list_of_metrics_is_one_group_and_no_metrics_means_all_of_them():
    flat = Hypothesis(verifier=seen_metrics, metrics=["total", "count"], name="flat")
    everything = Hypothesis(verifier=seen_metrics, name="everything")
    result = run_with(flat, everything, treatments=[THREE_TREATMENTS[0]])
    assert result.get_hypothesis("flat").results["small"]["metrics"] == ["count", "total"]
    assert result.get_hypothesis("everything").results["small"]["metrics"] == [
        "count",
        "p",
        "total",
    ]


# --- ranking ------------------------------------------------------------------------------


def test_the_default_ranker_orders_treatments_by_p_value():
    default = Hypothesis(verifier=mean_difference(), metrics=["total", "p"])
    assert default.ranker is rank_by_p_value
    assert default.name == "hypothesis"

    ranking = run_with(default).get_hypothesis("hypothesis").ranking
    assert ranking["best"] == "tiny"
    assert ranking["ranked"] == [("tiny", 0.01), ("small", 0.2), ("big", 0.4)]


def test_rank_by_p_value_takes_the_largest_p_value_of_several_groups():
    assert rank_by_p_value({"p_value": 0.2}) == 0.2
    assert rank_by_p_value({"significant": True}) == 1.0
    assert rank_by_p_value([{"p_value": 0.2}, {"p_value": 0.03}]) == 0.2


def test_a_custom_ranker_orders_treatments_lowest_score_first():
    result = run_with(biggest_total_first)
    evaluated = result.get_hypothesis("biggest_total_first")
    assert evaluated.name == "biggest_total_first"
    assert evaluated.ranking["best"] == "big"
    assert [name for name, _ in evaluated.ranking["ranked"]] == ["big", "small", "tiny"]
    assert [score for _, score in evaluated.ranking["ranked"]] == pytest.approx([-3.0, -1.0, -0.5])
    assert evaluated.get_for_treatment("big") is evaluated.results["big"]


def test_a_hypothesis_name_can_be_given_explicitly():
    named = hypothesis(verifier=mean_difference(), metrics="total", name="renamed")(rank_by_p_value)
    assert named.name == "renamed"
    result = run_with(named)
    assert result.get_hypothesis("rank_by_p_value") is None
    evaluated = result.get_hypothesis("renamed")
    assert evaluated is not None
    assert evaluated.name == "renamed"
    assert sorted(evaluated.results) == ["big", "small", "tiny"]


def test_a_verifier_may_return_an_object_with_as_dict():
    result = run_with(Hypothesis(verifier=returns_object, metrics="p", name="objects"))
    evaluated = result.get_hypothesis("objects")
    assert isinstance(evaluated.results["tiny"], Verdict)
    assert evaluated.ranking["best"] == "tiny"


# --- errors -------------------------------------------------------------------------------


def test_a_missing_metric_is_reported_with_the_recorded_metrics_and_keeps_the_runs():
    calls: list[str] = []

    @verifier
    def counting(baseline, treatment):
        calls.append("called")
        return {"p_value": 0.5}

    fine = Hypothesis(verifier=counting, metrics="total", name="fine")
    missing = Hypothesis(verifier=counting, metrics=["total", "totl"], name="typo")
    with raises_message(
        MissingMetricError,
        "experiment 'hyp': hypothesis 'typo' needs metric 'totl', which no run of condition "
        "'baseline' recorded; recorded metrics: 'count', 'p', 'total'.",
    ) as excinfo:
        run_with(fine, missing)

    error = excinfo.value
    assert isinstance(error, KeyError)
    assert error.metric == "totl"
    assert calls == []  # reported before any hypothesis math
    assert error.result is not None
    assert len(error.result.runs) == 4 * 3
    assert error.result.metrics.treatments["big"].metrics["total"] == pytest.approx([3.0, 3.1, 3.2])


def test_a_verifier_returning_a_non_mapping_names_verifier_hypothesis_treatment_and_value():
    bad = Hypothesis(verifier=returns_list, metrics="total", name="listy")
    with raises_message(
        HypothesisError,
        "verifier 'returns_list' of hypothesis 'listy' returned [0.1] (list) for treatment "
        "'small'; a verifier must return a mapping",
    ) as excinfo:
        run_with(bad)
    assert excinfo.value.result is not None
    assert len(excinfo.value.result.runs) == 12


def test_a_verifier_that_raises_is_reported_with_the_hypothesis_and_treatment():
    bad = Hypothesis(verifier=divides_by_zero, metrics="total", name="zero")
    with raises_message(
        HypothesisError,
        "verifier 'divides_by_zero' of hypothesis 'zero' raised ZeroDivisionError: division "
        "by zero (treatment 'small', metrics ['total'], 3 complete replicates)",
    ) as excinfo:
        run_with(bad)
    assert isinstance(excinfo.value.__cause__, ZeroDivisionError)
    result = excinfo.value.result  # the runs are kept: only the verifier failed
    assert result is not None
    assert len(result.runs) == 4 * 3
    assert dict(result.errors) == {}


def test_a_ranker_that_raises_is_reported_with_the_hypothesis_and_treatment():
    def broken_ranker(result):
        return result["no such key"]

    bad = Hypothesis(verifier=mean_difference(), metrics="total", ranker=broken_ranker)
    with pytest.raises(
        HypothesisError,
        match=re.escape("ranker of hypothesis 'broken_ranker' raised KeyError: 'no such key'"),
    ):
        run_with(bad)


def test_hypotheses_without_treatments_are_rejected():
    with pytest.raises(
        ExperimentDefinitionError,
        match=re.escape("experiment 'hyp' has hypotheses but no treatments to compare"),
    ):
        run_with(biggest_total_first, treatments=[])


def test_two_hypotheses_with_one_name_are_rejected():
    with pytest.raises(
        ExperimentDefinitionError,
        match=re.escape("experiment 'hyp': two hypotheses are named 'biggest_total_first'"),
    ):
        run_with(biggest_total_first, biggest_total_first)


# --- warnings -----------------------------------------------------------------------------


def test_verifier_warnings_are_recorded_on_the_result_and_not_raised():
    # pyproject sets filterwarnings=error: a warning that escaped would fail this test
    result = run_with(Hypothesis(verifier=warns_once, metrics="total", name="noisy"))
    evaluated = result.get_hypothesis("noisy")
    assert evaluated.warnings == {
        "small": ("RuntimeWarning: precision loss",),
        "big": ("RuntimeWarning: precision loss",),
        "tiny": ("RuntimeWarning: precision loss",),
    }
    assert set(evaluated.results) == {"small", "big", "tiny"}


def test_a_warning_a_verifier_emits_twice_is_recorded_once():
    result = run_with(
        Hypothesis(verifier=warns_twice, metrics=[["total"], ["count"]], name="repeats"),
        treatments=[THREE_TREATMENTS[0]],
    )
    assert result.get_hypothesis("repeats").warnings == {
        "small": ("RuntimeWarning: precision loss",)
    }
