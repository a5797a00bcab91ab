"""Bad input: every mistake of the issue's list fails with a message that names the culprit."""

from __future__ import annotations

import re

import pytest
from _support import raises_message

from pytest_crystallize import (
    CrystallizeUsageError,
    Experiment,
    ExperimentDefinitionError,
    Hypothesis,
    HypothesisError,
    MissingMetricError,
    data_source,
    pipeline_step,
    treatment,
    verifier,
)

pytestmark = pytest.mark.usefixtures("in_tmp_path")


@data_source
def numbers(ctx):
    return [1.0, 2.0]


@pipeline_step
def add_delta(data, ctx, *, delta=0.0):
    return [x + delta for x in data]


@pipeline_step
def summarize(data, ctx):
    return data, {"total": sum(data)}


@pipeline_step
def play(probs, ctx, *, k):
    return probs[k]


@verifier
def returns_three(baseline, treatment):
    return 3


@verifier
def fine(baseline, treatment):
    return {"p_value": 0.5}


def plain_step(data, ctx):
    return data


def plain_source(ctx):
    return [1]


def builder(name: str = "bad"):
    return Experiment.builder(name).datasource(numbers()).add_step(summarize())


# --- steps --------------------------------------------------------------------------------


def test_an_unknown_step_argument_is_rejected_with_what_the_step_accepts():
    with raises_message(
        CrystallizeUsageError,
        "add_delta() got an unknown parameter 'detla' (=5); add_delta accepts: delta (default 0.0)",
    ):
        add_delta(detla=5)


def test_an_unknown_data_source_argument_is_rejected():
    with raises_message(
        CrystallizeUsageError,
        "numbers() got an unknown parameter 'size' (=3); numbers accepts: no parameters",
    ):
        numbers(size=3)


def test_a_positional_step_argument_is_rejected_with_the_keyword_form():
    with raises_message(
        CrystallizeUsageError,
        "add_delta() takes its parameters by name, got positional (5,); write add_delta(delta=...)",
    ):
        add_delta(5)


def test_a_missing_required_argument_is_reported_at_build_with_step_parameter_and_condition():
    exp = (
        Experiment.builder("bad")
        .datasource(numbers())
        .add_step(play())
        .treatments([treatment("with_k", {"k": 0})])
    )
    with raises_message(
        ExperimentDefinitionError,
        "experiment 'bad': step 'play' needs 'k', which is not passed as play(k=...), has no "
        "default and is not in the context of condition 'baseline'",
    ):
        exp.build()


def test_a_missing_required_argument_is_found_in_a_treatment_condition_too():
    exp = (
        Experiment.builder("bad")
        .datasource(numbers())
        .add_step(play())
        .treatments([treatment("baseline", {"k": 0}), treatment("without_k", {"x": 1})])
    )
    with pytest.raises(
        ExperimentDefinitionError,
        match=re.escape("step 'play' needs 'k', which is not passed as play(k=...)")
        + ".*"
        + re.escape("condition 'without_k'"),
    ):
        exp.build()


@pytest.mark.parametrize(
    ("replicates", "shown"),
    [(0, "0 (int)"), (-1, "-1 (int)"), (2.5, "2.5 (float)"), (True, "True (bool)")],
)
def test_replicates_must_be_a_positive_int(replicates, shown):
    with pytest.raises(
        ExperimentDefinitionError,
        match=re.escape(f"experiment 'bad': replicates must be a positive int, got {shown}"),
    ):
        builder().replicates(replicates).build()


def test_replicates_passed_to_run_are_checked_too():
    exp = builder().build()
    with pytest.raises(
        ExperimentDefinitionError,
        match=re.escape("replicates must be a positive int, got 0 (int)"),
    ):
        exp.run(replicates=0)


def test_a_plain_function_passed_to_add_step_is_rejected():
    with raises_message(
        CrystallizeUsageError,
        "add_step() got the plain function 'plain_step'; decorate it with @pipeline_step and "
        "pass plain_step()",
    ):
        Experiment.builder("bad").add_step(plain_step)


def test_a_plain_function_passed_to_datasource_is_rejected():
    with raises_message(
        CrystallizeUsageError,
        "datasource() got the plain function 'plain_source'; decorate it with @data_source "
        "and pass plain_source()",
    ):
        Experiment.builder("bad").datasource(plain_source).add_step(summarize()).build()


def test_a_step_without_a_data_parameter_is_rejected_at_decoration():
    with pytest.raises(
        CrystallizeUsageError,
        match=re.escape("step 'only_ctx' must take the data as its first positional parameter"),
    ):

        @pipeline_step
        def only_ctx(ctx):
            return 1


def test_an_experiment_without_a_data_source_is_rejected():
    with raises_message(
        ExperimentDefinitionError,
        "experiment 'bad' has no data source; call .datasource(...) before .build()",
    ):
        Experiment.builder("bad").add_step(summarize()).build()


def test_an_experiment_without_steps_is_rejected():
    with raises_message(
        ExperimentDefinitionError,
        "experiment 'bad' has no steps; call .add_step(...) or .pipeline([...]) before .build()",
    ):
        Experiment.builder("bad").datasource(numbers()).build()


# --- treatments ---------------------------------------------------------------------------


def test_a_treatment_that_is_neither_a_mapping_nor_callable_is_rejected():
    with raises_message(
        CrystallizeUsageError,
        "treatment 'x': apply must be a mapping of context values or a callable taking ctx, "
        "got 3 (int)",
    ):
        treatment("x", 3)


def test_something_that_is_not_a_treatment_is_rejected():
    with raises_message(
        CrystallizeUsageError,
        "treatments() takes Treatment objects made by treatment(name, {...}), got {'delta': 1}",
    ):
        builder().treatments([{"delta": 1}]).build()


# --- hypotheses ---------------------------------------------------------------------------


def test_a_verifier_returning_a_number_is_reported_with_the_value():
    exp = (
        builder()
        .add_step(add_delta())
        .treatments([treatment("boost", {"delta": 1.0})])
        .hypotheses([Hypothesis(verifier=returns_three, metrics="total", name="h")])
        .replicates(2)
        .build()
    )
    with raises_message(
        HypothesisError,
        "verifier 'returns_three' of hypothesis 'h' returned 3 (int) for treatment 'boost'",
    ) as excinfo:
        exp.run()
    # The error keeps the runs, which all completed: only the verifier was wrong.
    result = excinfo.value.result
    assert result is not None
    assert sorted((r.condition, r.replicate) for r in result.runs) == [
        ("baseline", 0),
        ("baseline", 1),
        ("boost", 0),
        ("boost", 1),
    ]
    assert result.metrics.treatments["boost"].metrics["total"] == [3.0, 3.0]


def test_a_hypothesis_naming_a_metric_no_step_records_is_reported_with_the_recorded_ones():
    exp = (
        builder()
        .treatments([treatment("boost", {"delta": 1.0})])
        .hypotheses([Hypothesis(verifier=fine, metrics="accuracy", name="h")])
        .build()
    )
    with raises_message(
        MissingMetricError,
        "experiment 'bad': hypothesis 'h' needs metric 'accuracy', which no run of condition "
        "'baseline' recorded; recorded metrics: 'total'",
    ) as excinfo:
        exp.run()
    assert excinfo.value.result.metrics.baseline.metrics["total"] == [3.0]


def test_something_that_is_not_a_hypothesis_is_rejected():
    with raises_message(
        ExperimentDefinitionError,
        "hypotheses() takes Hypothesis objects (made by @hypothesis or Hypothesis(...)), got",
    ):
        builder().treatments([treatment("t", {"x": 1})]).hypotheses([fine]).build()


# --- artifacts ----------------------------------------------------------------------------


@pipeline_step
def save_text(data, ctx):
    ctx.artifacts.add("f.txt", "text")
    return data


def test_a_text_artifact_is_recorded_as_a_run_error_that_says_to_encode():
    result = builder().add_step(save_text()).replicates(2).build().run()
    assert sorted(result.errors) == ["baseline_rep_0", "baseline_rep_1"]
    error = result.errors["baseline_rep_0"]
    assert (error.stage, error.where, error.exc_type) == (
        "step",
        "save_text",
        "CrystallizeUsageError",
    )
    assert re.search(
        re.escape("artifact 'f.txt' must be bytes, got str 'text'; encode text with .encode()"),
        error.message,
    )
