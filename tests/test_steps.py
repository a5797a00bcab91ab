"""Steps and data sources: decorators, how parameters are filled, what a step may return."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_crystallize import (
    DataSource,
    Experiment,
    Pipeline,
    PipelineStep,
    SerialExecution,
    data_source,
    inject_from_ctx,
    pipeline_step,
    standalone_context,
    treatment,
)

pytestmark = pytest.mark.usefixtures("in_tmp_path")


def run_experiment(source: Any, *steps: Any, **kwargs: Any):
    kwargs.setdefault("name", "steps")
    result = Experiment(source, list(steps), **kwargs).run()
    assert dict(result.errors) == {}
    return result


# --- components used below ----------------------------------------------------------------


@data_source
def bare_source(ctx):
    return 1


@data_source()
def called_source(ctx):
    return 2


@pipeline_step
def bare_step(data, ctx):
    return data + 1


@pipeline_step()
def called_step(data, ctx):
    return data * 10


@pipeline_step
def record(data, ctx):
    return data, {"out": data}


@data_source
def probabilities(ctx):
    return [0.1, 0.2, 0.3]


@pipeline_step
def play(probs, ctx, *, k):
    return probs[k]


@pipeline_step
def scale(values, *, factor):
    return [v * factor for v in values]


@pipeline_step
def combine(data, ctx, a, b=2, *, c, d=4):
    return data, {"combo": (a, b, c, d)}


@pipeline_step
def pick(data, *, choice="default"):
    return data, {"choice": choice}


@data_source
def sized_source(ctx, *, size=1):
    return list(range(size))


def never_call_me():
    msg = "a context value was called"
    raise AssertionError(msg)


class CallableValue:
    def __init__(self) -> None:
        self.tag = "kept"

    def __call__(self) -> None:
        msg = "a context value was called"
        raise AssertionError(msg)


@pipeline_step
def receive_callables(data, ctx, *, hook, obj):
    return data, {
        "hook_is_function": hook is never_call_me,
        "obj_type": type(obj).__name__,
        "obj_tag": obj.tag,
    }


@data_source
async def async_source(ctx):
    await asyncio.sleep(0)
    return 5


@pipeline_step
async def async_double(data, ctx, *, factor=2):
    await asyncio.sleep(0)
    return data * factor, {"doubled": data * factor}


@pipeline_step
def returns_metrics(data, ctx):
    return data, {"m": 1, "n": 2}


@pipeline_step
def returns_plain_pair(data, ctx):
    return (data, [1, 2])


@pipeline_step
def returns_scalar_pair(data, ctx):
    return (data, 7)


@pipeline_step
def returns_triple(data, ctx):
    return (data, {"ignored": 1}, 3)


# --- decorators ---------------------------------------------------------------------------


def test_pipeline_step_and_data_source_work_with_and_without_parentheses():
    for factory in (bare_step, called_step, record):
        assert isinstance(factory(), PipelineStep)
    for factory in (bare_source, called_source):
        assert isinstance(factory(), DataSource)

    expected = {bare_source: 20, called_source: 30}
    for source, out in expected.items():
        result = run_experiment(source(), bare_step(), called_step(), record())
        assert result.metrics.baseline.metrics["out"] == [out]


def test_a_factory_passed_without_calling_it_is_used_with_no_explicit_arguments():
    result = run_experiment(bare_source, bare_step, record)
    assert result.metrics.baseline.metrics["out"] == [2]


def test_a_decorated_step_keeps_its_name_and_docstring():
    @pipeline_step
    def documented(data, ctx):
        """Says what it does."""
        return data

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Says what it does."
    assert documented().name == "documented"


# --- parameters ---------------------------------------------------------------------------


def test_the_first_positional_parameter_receives_the_data_whatever_its_name():
    result = run_experiment(probabilities(), play(), record(), initial_ctx={"k": 1})
    assert result.metrics.baseline.metrics["out"] == [0.2]


def test_a_step_may_omit_the_ctx_parameter():
    result = run_experiment(probabilities(), scale(factor=10), record())
    assert result.metrics.baseline.metrics["out"] == [[1.0, 2.0, 3.0]]


def test_required_and_defaulted_keyword_only_and_positional_parameters_come_from_the_context():
    only_required = run_experiment(bare_source(), combine(), initial_ctx={"a": 1, "c": 3})
    assert only_required.metrics.baseline.metrics["combo"] == [(1, 2, 3, 4)]

    everything = run_experiment(
        bare_source(), combine(), initial_ctx={"a": 1, "b": 20, "c": 3, "d": 40}
    )
    assert everything.metrics.baseline.metrics["combo"] == [(1, 20, 3, 40)]


def test_a_treatment_value_reaches_a_positional_or_keyword_parameter():
    result = run_experiment(
        bare_source(),
        combine(),
        initial_ctx={"a": 1, "c": 3},
        treatments=[treatment("bigger_b", {"b": 200})],
    )
    assert result.metrics.treatments["bigger_b"].metrics["combo"] == [(1, 200, 3, 4)]


def test_an_explicit_argument_beats_the_context_which_beats_the_default():
    explicit = run_experiment(bare_source(), pick(choice="explicit"), initial_ctx={"choice": "ctx"})
    from_ctx = run_experiment(bare_source(), pick(), initial_ctx={"choice": "ctx"})
    default = run_experiment(bare_source(), pick())

    assert explicit.metrics.baseline.metrics["choice"] == ["explicit"]
    assert from_ctx.metrics.baseline.metrics["choice"] == ["ctx"]
    assert default.metrics.baseline.metrics["choice"] == ["default"]


def test_a_data_source_parameter_comes_from_the_context_or_its_explicit_argument():
    from_ctx = run_experiment(sized_source(), record(), initial_ctx={"size": 3})
    explicit = run_experiment(sized_source(size=2), record(), initial_ctx={"unrelated": 0})
    default = run_experiment(sized_source(), record())

    assert from_ctx.metrics.baseline.metrics["out"] == [[0, 1, 2]]
    assert explicit.metrics.baseline.metrics["out"] == [[0, 1]]
    assert default.metrics.baseline.metrics["out"] == [[0]]


def test_a_callable_stored_in_the_context_is_passed_as_a_value_and_never_called():
    result = run_experiment(
        bare_source(),
        receive_callables(),
        initial_ctx={"hook": never_call_me, "obj": CallableValue()},
    )
    metrics = result.metrics.baseline.metrics
    assert metrics["hook_is_function"] == [True]
    assert metrics["obj_type"] == ["CallableValue"]
    assert metrics["obj_tag"] == ["kept"]


def test_a_step_can_be_called_directly_with_a_standalone_context():
    step = scale()
    assert step([1, 2], standalone_context({"factor": 3})) == [3, 6]
    assert scale(factor=5)([1], standalone_context({"factor": 3})) == [5]


def test_inject_from_ctx_fills_missing_parameters_from_the_context():
    @inject_from_ctx
    def shift(data, ctx, *, by=0):
        return data + by

    ctx = standalone_context({"by": 4})
    assert shift(1, ctx) == 5
    assert shift(1, ctx, by=10) == 11


# --- async --------------------------------------------------------------------------------


def test_async_steps_and_async_data_sources_run_in_an_experiment():
    result = run_experiment(
        async_source(),
        async_double(),
        record(),
        replicates=3,
        treatments=[treatment("triple", {"factor": 3})],
    )
    assert result.metrics.baseline.metrics["doubled"] == [10, 10, 10]
    assert result.metrics.treatments["triple"].metrics["out"] == [15, 15, 15]


def test_an_async_step_mixed_with_sync_steps_runs_under_serial_execution():
    result = run_experiment(
        bare_source(), async_double(), bare_step(), record(), plugins=[SerialExecution()]
    )
    assert result.metrics.baseline.metrics["out"] == [3]


def test_an_async_pipeline_runs_with_arun():
    pipeline = Pipeline([async_double(), bare_step()])
    assert asyncio.run(pipeline.arun(4, standalone_context())) == 9


# --- return values ------------------------------------------------------------------------


def test_returning_data_and_a_mapping_records_the_metrics_and_forwards_the_data():
    result = run_experiment(bare_source(), returns_metrics(), record())
    metrics = result.metrics.baseline.metrics
    assert metrics["m"] == [1]
    assert metrics["n"] == [2]
    assert metrics["out"] == [1]


def test_a_two_tuple_whose_second_item_is_not_a_mapping_is_data():
    pair = run_experiment(bare_source(), returns_plain_pair(), record())
    scalar = run_experiment(bare_source(), returns_scalar_pair(), record())
    triple = run_experiment(bare_source(), returns_triple(), record())

    assert pair.metrics.baseline.metrics["out"] == [(1, [1, 2])]
    assert scalar.metrics.baseline.metrics["out"] == [(1, 7)]
    assert triple.metrics.baseline.metrics["out"] == [(1, {"ignored": 1}, 3)]
    assert "ignored" not in triple.metrics.baseline.metrics


def test_pipeline_run_unpacks_metrics_onto_the_context():
    ctx = standalone_context()
    out = Pipeline([returns_metrics(), bare_step()]).run(1, ctx)
    assert out == 2
    assert ctx.metrics["m"] == (1,)


def test_a_step_raising_in_pipeline_run_or_apply_is_named_by_pipeline_execution_error():
    from pytest_crystallize import Experiment, Pipeline, PipelineExecutionError, standalone_context

    @pipeline_step
    def explode(data, ctx):
        raise ValueError("no good")

    pipe = Pipeline([explode()])
    with pytest.raises(
        PipelineExecutionError, match=r"Step 'explode' failed: ValueError: no good"
    ) as info:
        pipe.run(1, standalone_context())
    assert isinstance(info.value.original_exception, ValueError)
    assert isinstance(info.value.__cause__, ValueError)

    @data_source
    def one(ctx):
        return 1

    experiment = Experiment.builder("boom").datasource(one()).add_step(explode()).build()
    with pytest.raises(PipelineExecutionError, match="Step 'explode' failed"):
        experiment.apply()
