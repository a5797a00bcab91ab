"""Names are checked when the experiment is built, by one checker, with one message.

A name becomes part of a pytest node id (``file::experiment::hypothesis::treatment``) and of
folder names on disk, so ``model::v2`` made its verdicts vanish under pytest and ``..``
escaped the data folder. The error names the kind of object, echoes the name, names the
offending character and the file and line of the user's call.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from pytest_crystallize import (
    Artifact,
    CrystallizeUsageError,
    DataSource,
    Experiment,
    ExperimentDefinitionError,
    Hypothesis,
    PipelineStep,
    data_source,
    pipeline_step,
    standalone_context,
    treatment,
)

pytestmark = pytest.mark.usefixtures("in_tmp_path")

ALLOWED = (
    "may not be empty, start with '.', or contain '::', '[', ']', '/', '\\' or a line break "
    "(names become test ids and folder names)"
)
BAD = [
    ("model::v2", "contains '::'"),
    ("a[1]", "contains '['"),
    ("a]", "contains ']'"),
    ("a/b", "contains '/'"),
    ("a\\b", "contains '\\\\'"),
    ("two\nlines", "contains '\\n'"),
    ("", "is empty"),
    (".hidden", "starts with '.'"),
    ("..", "starts with '.'"),
]
GOOD = ["model-v2", "lr=0.1", "a.b", "with space", "x:y", "Übung", "baseline_2"]


def here(offset: int = 1) -> str:
    """``file:line`` of the caller's line plus ``offset``."""
    frame = sys._getframe(1)
    return f"{__file__}:{frame.f_lineno + offset}"


def expected(kind: str, name: str, problem: str, at: str | None, owner: str = "") -> str:
    article = "an" if kind[0] in "aeiou" else "a"
    tail = f" (at {at})" if at is not None else ""
    return f"{owner}{article} {kind} name {ALLOWED}, got {name!r}, which {problem}; rename it{tail}"


@data_source
def start(ctx: Any) -> float:
    return 1.0


@pipeline_step
def score(data: float, ctx: Any) -> Any:
    return data, {"score": data + ctx["replicate"]}


def never(baseline: Any, treatment: Any) -> dict[str, Any]:
    return {"p_value": 0.5, "significant": False}


@pytest.mark.parametrize(("name", "problem"), BAD)
def test_an_experiment_name_is_checked_where_it_is_made(name: str, problem: str) -> None:
    at = here(2)
    with pytest.raises(CrystallizeUsageError) as info:
        Experiment(start(), [score()], name=name)
    assert str(info.value) == expected("experiment", name, problem, at)


def test_the_builder_reports_the_line_that_calls_build() -> None:
    builder = Experiment.builder("model::v2").datasource(start()).add_step(score())
    at = here(2)
    with pytest.raises(CrystallizeUsageError) as info:
        builder.build()
    assert str(info.value) == expected("experiment", "model::v2", "contains '::'", at)


@pytest.mark.parametrize(("name", "problem"), BAD)
def test_a_treatment_name_is_checked_where_it_is_made(name: str, problem: str) -> None:
    at = here(2)
    with pytest.raises(CrystallizeUsageError) as info:
        treatment(name, {"x": 1})
    assert str(info.value) == expected("treatment", name, problem, at)


def test_a_decorated_treatment_reports_the_decorator_line() -> None:
    at = here(3)
    with pytest.raises(CrystallizeUsageError) as info:

        @treatment("boost::v2")
        def boost(ctx: Any) -> None:
            return None

    assert str(info.value) == expected("treatment", "boost::v2", "contains '::'", at)


def test_a_treatment_name_that_is_not_a_str_is_refused() -> None:
    at = here(2)
    with pytest.raises(CrystallizeUsageError) as info:
        treatment(3, {"x": 1})  # type: ignore[call-overload]
    assert str(info.value) == expected("treatment", 3, "is of type int, not str", at)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "problem"), BAD[:4])
def test_a_hypothesis_name_is_checked_when_the_experiment_is_built(name: str, problem: str) -> None:
    hyp = Hypothesis(never, metrics="score", name=name)
    at = here(2)
    with pytest.raises(ExperimentDefinitionError) as info:
        Experiment(start(), [score()], name="e", treatments=[treatment("t", {})], hypotheses=[hyp])
    assert str(info.value) == expected("hypothesis", name, problem, at, "experiment 'e': ")


def test_a_metric_a_hypothesis_names_is_checked_when_the_experiment_is_built() -> None:
    hyp = Hypothesis(never, metrics=[["score"], ["acc/top1"]], name="h")
    at = here(2)
    with pytest.raises(ExperimentDefinitionError) as info:
        Experiment(start(), [score()], name="e", treatments=[treatment("t", {})], hypotheses=[hyp])
    owner = "experiment 'e': hypothesis 'h': "
    assert str(info.value) == expected("metric", "acc/top1", "contains '/'", at, owner)


class Slashed(PipelineStep):
    @property
    def name(self) -> str:
        return "fit/predict"

    def __call__(self, data: Any, ctx: Any) -> Any:
        return data


class Dotted(DataSource):
    @property
    def name(self) -> str:
        return "../data"

    def fetch(self, ctx: Any) -> Any:
        return 1.0


def test_a_step_name_is_checked_when_the_experiment_is_built() -> None:
    at = here(2)
    with pytest.raises(ExperimentDefinitionError) as info:
        Experiment(start(), [score(), Slashed()], name="e")
    assert str(info.value) == expected(
        "step", "fit/predict", "contains '/'", at, "experiment 'e': "
    )


def test_a_data_source_name_is_checked_when_the_experiment_is_built() -> None:
    at = here(2)
    with pytest.raises(ExperimentDefinitionError) as info:
        Experiment(Dotted(), [score()], name="e")
    owner = "experiment 'e': "
    assert str(info.value) == expected("data source", "../data", "starts with '.'", at, owner)


@pytest.mark.parametrize(("name", "problem"), BAD)
def test_a_metric_name_is_checked_when_recorded(name: str, problem: str) -> None:
    ctx = standalone_context()
    at = here(2)
    with pytest.raises(CrystallizeUsageError) as info:
        ctx.metrics.add(name, 1.0)
    assert str(info.value) == expected("metric", name, problem, at)
    assert name not in ctx.metrics


@pipeline_step
def records_badly(data: float, ctx: Any) -> float:
    ctx.record("acc[top1]", 0.5)
    return data


@pipeline_step
def returns_badly(data: float, ctx: Any) -> Any:
    return data, {"acc::top1": 0.5}


def test_a_run_whose_step_records_a_bad_metric_name_fails_naming_the_step_and_its_line() -> None:
    result = Experiment(start(), [records_badly()], name="e").run()
    error = result.errors["baseline_rep_0"]
    at = f"{__file__}:{records_badly.fn.__code__.co_firstlineno + 2}"
    assert (error.stage, error.where, error.exc_type) == (
        "step",
        "records_badly",
        "CrystallizeUsageError",
    )
    assert error.message == expected("metric", "acc[top1]", "contains '['", at)


def test_a_metric_name_returned_by_a_step_fails_the_run_naming_the_step() -> None:
    result = Experiment(start(), [returns_badly()], name="e").run()
    error = result.errors["baseline_rep_0"]
    assert (error.stage, error.where) == ("step", "returns_badly")
    owner = "a step returned metrics: "
    assert error.message == expected("metric", "acc::top1", "contains '::'", None, owner)


@pytest.mark.parametrize(("name", "problem"), BAD)
def test_an_artifact_name_is_checked(name: str, problem: str) -> None:
    at = here(2)
    with pytest.raises(CrystallizeUsageError) as info:
        Artifact(name)
    assert str(info.value) == expected("artifact", name, problem, at)
    ctx = standalone_context()
    at = here(2)
    with pytest.raises(CrystallizeUsageError) as info:
        ctx.artifacts.add(name, b"x")
    assert str(info.value) == expected("artifact", name, problem, at)


def test_artifact_datasource_checks_the_step_and_file_names() -> None:
    experiment = Experiment(start(), [score()], name="e")
    at = here(2)
    with pytest.raises(CrystallizeUsageError) as info:
        experiment.artifact_datasource("score", "../../etc/passwd")
    assert str(info.value) == expected("artifact", "../../etc/passwd", "starts with '.'", at)


@pytest.mark.parametrize("name", GOOD)
def test_ordinary_names_keep_working(name: str) -> None:
    hyp = Hypothesis(never, metrics=name, name=name)

    @pipeline_step
    def record(data: float, ctx: Any) -> Any:
        ctx.artifacts.add(name, b"x")
        return data, {name: data + ctx["replicate"]}

    experiment = Experiment(
        start(),
        [record()],
        name=name,
        treatments=[treatment(name, {})],
        hypotheses=[hyp],
        replicates=3,
        outputs=[Artifact(name)],
    )
    result = experiment.run()
    assert result.errors == {}
    evaluated = result.get_hypothesis(name)
    assert evaluated is not None
    assert evaluated.results[name] == {"p_value": 0.5, "significant": False}
