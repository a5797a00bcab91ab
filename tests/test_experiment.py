"""Treatments, the builder, and how metrics and failures keep their replicate structure."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from _support import raises_message

import pytest_crystallize
from pytest_crystallize import (
    Experiment,
    ExperimentDefinitionError,
    ExperimentRunError,
    Hypothesis,
    RunError,
    data_source,
    pipeline_step,
    treatment,
    verifier,
)

PACKAGE_DIR = str(Path(pytest_crystallize.__file__).parent)


pytestmark = pytest.mark.usefixtures("in_tmp_path")


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step
def add_delta(data, ctx, *, delta=0):
    return [x + delta for x in data]


@pipeline_step
def total(data, ctx):
    return data, {"total": sum(data)}


@pipeline_step
def identify(data, ctx):
    return data, {"replicate": ctx["replicate"], "condition": ctx["condition"], "seed": ctx.seed}


@pipeline_step
def grow_list(data, ctx, *, items):
    items.append(ctx["replicate"])
    return data, {"items": list(items)}


@pipeline_step
def use_bonus(data, ctx, *, bonus=0):
    return data, {"bonus": bonus}


@pipeline_step
def record_twice(data, ctx):
    ctx.metrics.add("loss", ctx["replicate"])
    ctx.metrics.add("loss", ctx["replicate"] + 0.5)
    return data, {"once": 1}


@pipeline_step
def fragile(data, ctx, *, fail_in=("baseline", 1)):
    condition, replicate = fail_in
    if ctx["condition"] == condition and ctx["replicate"] == replicate:
        msg = f"boom in {condition} {replicate}"
        raise ValueError(msg)
    return data, {"value": sum(data) + ctx["replicate"]}


@data_source
def fragile_source(ctx):
    if ctx["replicate"] == 0:
        msg = "no data for replicate 0"
        raise OSError(msg)
    return [1]


@verifier
def sample_sizes(baseline, treatment):
    return {"p_value": 0.5, "n": len(baseline["value"]), "values": list(treatment["value"])}


def build(*steps: Any, **kwargs: Any) -> Experiment:
    kwargs.setdefault("name", "exp")
    return Experiment(numbers(), list(steps), **kwargs)


# --- treatments ---------------------------------------------------------------------------


def test_a_treatment_payload_overlays_the_initial_context():
    result = build(
        add_delta(),
        total(),
        initial_ctx={"delta": 0},
        treatments=[treatment("boost", {"delta": 10})],
        replicates=2,
    ).run()
    assert result.metrics.baseline.metrics["total"] == [6, 6]
    assert result.metrics.treatments["boost"].metrics["total"] == [36, 36]


def test_treatments_are_accepted_called_or_not():
    boost = treatment("boost", {"delta": 10})
    assert boost() is boost
    called = build(add_delta(), total(), treatments=[boost()]).run()
    uncalled = build(add_delta(), total(), treatments=[boost]).run()
    assert (
        called.metrics.treatments["boost"].metrics == uncalled.metrics.treatments["boost"].metrics
    )


def test_each_run_gets_a_fresh_context_so_a_step_mutating_a_list_it_read_changes_no_other_run():
    initial = {"items": ["start"]}
    exp = build(
        grow_list(),
        initial_ctx=initial,
        treatments=[treatment("other", {"items": ["other"]})],
        replicates=3,
    )
    result = exp.run()
    assert result.metrics.baseline.metrics["items"] == [["start", 0], ["start", 1], ["start", 2]]
    assert result.metrics.treatments["other"].metrics["items"] == [
        ["other", 0],
        ["other", 1],
        ["other", 2],
    ]
    assert initial == {"items": ["start"]}
    assert exp.initial_ctx == {"items": ["start"]}

    again = exp.run()
    assert again.metrics.baseline.metrics == result.metrics.baseline.metrics


@treatment("with_bonus")
def with_bonus(ctx):
    ctx.add("bonus", 5)


@treatment("mapped")
def mapped(ctx):
    return {"delta": ctx["delta"] + 7}


def triple_delta(ctx):
    return {"delta": ctx["delta"] * 3}


def test_a_decorated_callable_treatment_can_add_context_keys():
    result = build(use_bonus(), treatments=[with_bonus], replicates=2).run()
    assert result.metrics.baseline.metrics["bonus"] == [0, 0]
    assert result.metrics.treatments["with_bonus"].metrics["bonus"] == [5, 5]


def test_a_callable_treatment_returning_a_mapping_overlays_it():
    result = build(
        add_delta(),
        total(),
        initial_ctx={"delta": 1},
        treatments=[mapped, treatment("tripled", triple_delta)],
    ).run()
    assert result.metrics.baseline.metrics["total"] == [9]
    assert result.metrics.treatments["mapped"].metrics["total"] == [30]
    assert result.metrics.treatments["tripled"].metrics["total"] == [15]


def test_a_treatment_named_baseline_modifies_the_baseline():
    result = build(
        add_delta(),
        total(),
        treatments=[treatment("baseline", {"delta": 5}), treatment("boost", {"delta": 10})],
    ).run()
    assert result.conditions == ("baseline", "boost")
    assert list(result.metrics.treatments) == ["boost"]
    assert result.metrics.baseline.metrics["total"] == [21]
    assert result.metrics.treatments["boost"].metrics["total"] == [36]


@pytest.mark.parametrize("key", ["condition", "replicate", "seed"])
def test_a_treatment_setting_a_reserved_key_is_rejected_at_build(key):
    builder = (
        Experiment.builder("reserved")
        .datasource(numbers())
        .add_step(total())
        .treatments([treatment("sneaky", {key: 1})])
    )
    with pytest.raises(
        ExperimentDefinitionError,
        match=re.escape(f"experiment 'reserved': treatment 'sneaky' sets the reserved key {key!r}"),
    ):
        builder.build()


def test_a_treatment_setting_ctx_is_rejected_at_build():
    builder = (
        Experiment.builder("noop")
        .datasource(numbers())
        .add_step(total())
        .treatments([treatment("sneaky", {"ctx": 1})])
    )
    with pytest.raises(ExperimentDefinitionError) as info:
        builder.build()
    assert str(info.value) == (
        "experiment 'noop': treatment 'sneaky' sets 'ctx', which no step can receive (a step's "
        "ctx parameter is the run's context itself), so the treatment would have no effect; "
        "give the value another name"
    )


def test_initial_ctx_setting_a_reserved_key_is_rejected():
    with pytest.raises(
        ExperimentDefinitionError,
        match=re.escape("experiment 'exp': initial_ctx sets the reserved key 'seed'"),
    ):
        build(total(), initial_ctx={"seed": 3})


@pytest.mark.parametrize("name", ["dup", "baseline"])
def test_two_treatments_with_one_name_are_rejected_at_build(name: str) -> None:
    builder = (
        Experiment.builder("dups")
        .datasource(numbers())
        .add_step(add_delta())
        .treatments([treatment(name, {"delta": 1}), treatment(name, {"delta": 2})])
    )
    message = f"experiment 'dups': two treatments are named {name!r}; rename one"
    with raises_message(ExperimentDefinitionError, message):
        builder.build()


def test_a_treatment_key_that_a_step_receives_explicitly_is_rejected():
    builder = (
        Experiment.builder("shadowed")
        .datasource(numbers())
        .add_step(add_delta(delta=1))
        .add_step(total())
        .treatments([treatment("boost", {"delta": 10})])
    )
    with raises_message(
        ExperimentDefinitionError,
        "experiment 'shadowed': treatment 'boost' sets 'delta', but step 'add_delta' "
        "receives delta=1 explicitly, so the treatment would have no effect",
    ):
        builder.build()


def test_a_callable_treatment_that_fails_is_recorded_as_a_treatment_error():
    def explode(ctx):
        msg = "cannot apply"
        raise RuntimeError(msg)

    result = build(total(), treatments=[treatment("broken", explode)], replicates=2).run()
    assert sorted(result.errors) == ["broken_rep_0", "broken_rep_1"]
    error = result.errors["broken_rep_0"]
    assert (error.stage, error.where, error.exc_type) == ("treatment", "broken", "RuntimeError")
    assert result.metrics.baseline.metrics["total"] == [6, 6]


def test_a_callable_treatment_returning_a_reserved_key_fails_its_runs():
    def reseed(ctx):
        return {"seed": 1}

    result = build(total(), treatments=[treatment("reseed", reseed)]).run()
    error = result.errors["reseed_rep_0"]
    assert (error.stage, error.where) == ("treatment", "reseed")
    assert "treatment 'reseed' returned the reserved key 'seed'" in error.message
    assert result.metrics.treatments["reseed"].failed == (0,)
    assert result.metrics.baseline.metrics["total"] == [6]


# --- the builder --------------------------------------------------------------------------


def test_the_builder_sets_every_part_of_the_experiment():
    exp = (
        Experiment.builder("built")
        .datasource(numbers())
        .add_step(add_delta())
        .add_step(total())
        .initial_ctx({"delta": 2})
        .treatments([treatment("boost", {"delta": 4})])
        .replicates(3)
        .description("a test")
        .build()
    )
    assert exp.name == "built"
    assert exp.description == "a test"
    assert exp.replicates == 3
    assert [s.name for s in exp.steps] == ["add_delta", "total"]
    result = exp.run()
    assert result.metrics.baseline.metrics["total"] == [12, 12, 12]
    assert result.metrics.treatments["boost"].metrics["total"] == [18, 18, 18]


def test_run_arguments_apply_to_that_call_only():
    exp = build(add_delta(), total(), treatments=[treatment("boost", {"delta": 1})], replicates=2)
    once = exp.run(replicates=4, treatments=[treatment("more", {"delta": 2})])
    assert once.replicates == 4
    assert list(once.metrics.treatments) == ["more"]
    again = exp.run()
    assert again.replicates == 2
    assert list(again.metrics.treatments) == ["boost"]


# --- metrics structure --------------------------------------------------------------------


def test_metrics_are_per_replicate_lists_aligned_across_conditions():
    result = build(
        identify(), treatments=[treatment("a", {"x": 1}), treatment("b", {"x": 2})], replicates=4
    ).run()
    conditions = {"baseline": result.metrics.baseline, **result.metrics.treatments}
    for name, metrics in conditions.items():
        assert metrics.name == name
        assert metrics.metrics["replicate"] == [0, 1, 2, 3]
        assert metrics.metrics["condition"] == [name] * 4
        assert metrics.metrics["seed"] == list(metrics.seeds)
        assert metrics["replicate"] == [0, 1, 2, 3]
    assert result.metrics.condition("a") is result.metrics.treatments["a"]
    assert [(r.condition, r.replicate) for r in result.runs[:3]] == [
        ("baseline", 0),
        ("a", 0),
        ("b", 0),
    ]


def test_a_metric_recorded_twice_in_a_run_gives_a_tuple_per_replicate():
    result = build(record_twice(), replicates=3).run()
    assert result.metrics.baseline.metrics["loss"] == [(0, 0.5), (1, 1.5), (2, 2.5)]
    assert result.metrics.baseline.metrics["once"] == [1, 1, 1]


def test_a_failed_run_is_recorded_with_its_place_and_the_users_traceback():
    result = build(fragile(), treatments=[treatment("t", {"x": 1})], replicates=3).run()

    assert list(result.errors) == ["baseline_rep_1"]
    error = result.errors["baseline_rep_1"]
    assert isinstance(error, RunError)
    assert error.key == "baseline_rep_1"
    assert (error.condition, error.replicate) == ("baseline", 1)
    assert (error.stage, error.where) == ("step", "fragile")
    assert error.exc_type == "ValueError"
    assert error.message == "boom in baseline 1"
    assert isinstance(error.exception, ValueError)
    assert "in fragile" in error.traceback
    assert "raise ValueError(msg)" in error.traceback
    assert "ValueError: boom in baseline 1" in error.traceback
    assert PACKAGE_DIR not in error.traceback
    assert f"{PACKAGE_DIR}/_" not in error.traceback  # no frame of the package's own modules
    assert error.traceback.count('File "') == 1  # only the user's frame


def test_a_failed_run_gives_none_at_its_index_and_keeps_the_other_runs():
    result = build(fragile(), treatments=[treatment("t", {"x": 1})], replicates=3).run()

    assert len(result.runs) == 6
    assert result.metrics.baseline.metrics["value"] == [6, None, 8]
    # the baseline failure does not drop replicate 1 of the treatment
    assert result.metrics.treatments["t"].metrics["value"] == [6, 7, 8]
    assert result.metrics.baseline.failed == (1,)
    assert result.metrics.treatments["t"].failed == ()
    assert result.incomplete_replicates == (1,)


def test_a_failing_data_source_is_recorded_with_its_stage_and_name():
    exp = Experiment(fragile_source(), [total()], name="src", replicates=2)
    result = exp.run()
    error = result.errors["baseline_rep_0"]
    assert (error.stage, error.where, error.exc_type) == (
        "data source",
        "fragile_source",
        "OSError",
    )
    assert "in fragile_source" in error.traceback
    assert result.metrics.baseline.metrics["total"] == [None, 1]


def test_a_condition_with_failed_runs_gets_no_verdict_in_a_script():
    hyp = Hypothesis(verifier=sample_sizes, metrics="value", name="sizes")
    result = build(
        fragile(fail_in=("t", 2)),
        treatments=[treatment("t", {"x": 1})],
        hypotheses=[hyp],
        replicates=4,
    ).run()

    assert result.incomplete_replicates == (2,)
    evaluated = result.get_hypothesis("sizes")
    assert evaluated is not None
    assert evaluated.replicates == {}
    assert evaluated.results["t"] == {
        "error": "1 of 4 runs of condition 't' failed, so no verdict is given on the runs "
        "that succeeded; first failure: replicate 2 of condition 't', step 'fragile' raised "
        "ValueError: boom in t 2 (see result.errors)"
    }


def test_raise_for_errors_raises_with_the_result_attached():
    result = build(fragile(), treatments=[treatment("t", {"x": 1})], replicates=3).run()
    with pytest.raises(ExperimentRunError, match=r"1 of 6 runs failed") as excinfo:
        result.raise_for_errors()
    assert excinfo.value.result is result
    assert "baseline_rep_1" in str(excinfo.value)
    assert "step 'fragile' raised ValueError: boom in baseline 1" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, ValueError)


def test_raise_for_errors_does_nothing_when_every_run_succeeded():
    result = build(total(), replicates=2).run()
    assert result.errors == {}
    assert result.incomplete_replicates == ()
    result.raise_for_errors()


def test_a_result_serialises_to_json():
    result = build(total(), treatments=[treatment("t", {"x": 1})], replicates=2).run()
    data = result.to_dict()
    assert data["metrics"] == {"baseline": {"total": [6, 6]}, "t": {"total": [6, 6]}}
    assert '"replicates": 2' in result.to_json()


def test_print_tree_shows_each_run_by_treatment_or_by_replicate_and_returns_the_text(capsys):
    result = (
        Experiment.builder("tree")
        .datasource(numbers())
        .add_step(add_delta())
        .treatments([treatment("up", {"delta": 1})])
        .replicates(2)
        .build()
        .run()
    )
    text = result.print_tree()
    assert capsys.readouterr().out == text + "\n"
    assert text.splitlines()[0] == "baseline"
    assert text.splitlines()[3] == "up"
    by_replicate = result.print_tree("replicate > treatment").splitlines()
    assert by_replicate[0] == "replicate 0"
    assert by_replicate[1].startswith("  baseline: ")
    with pytest.raises(ValueError, match=r"print_tree\(fmt=\.\.\.\) orders 'treatment'"):
        result.print_tree("step > action")
