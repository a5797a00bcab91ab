"""A user's experiment file in the tutorial's style, fully annotated: ``mypy --strict`` passes.

tests/test_typing.py runs mypy on it (and runs it); experiment_bad.py holds the mistakes mypy
must catch. The annotated assignments at the end pin the types the decorators must keep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_crystallize import (
    DataSource,
    Experiment,
    FrozenContext,
    Hypothesis,
    ParallelExecution,
    PipelineStep,
    Treatment,
    VerifierCallable,
    data_source,
    hypothesis,
    inject_from_ctx,
    pipeline_step,
    standalone_context,
    stats,
    treatment,
    verifier,
)


@data_source
def fetch_numbers(ctx: FrozenContext) -> list[int]:
    """Return the baseline payload that enters the pipeline."""
    return [0, 0, 0]


@data_source()
def sized_numbers(ctx: FrozenContext, size: int = 3) -> list[int]:
    """As many zeros as ``size`` says (explicit, else from the context, else 3)."""
    return [0] * size


@pipeline_step()
def add_delta(data: list[int], ctx: FrozenContext, *, delta: float = 0.0) -> list[float]:
    """Inject a configurable delta (supplied by treatments or defaults)."""
    return [x + delta for x in data]


@pipeline_step
def scale(data: list[float], ctx: FrozenContext, factor: float = 1.0) -> list[float]:
    """Multiply every value by ``factor``."""
    return [x * factor for x in data]


@pipeline_step(cacheable=True, deterministic=True)
def summarize(data: list[float], ctx: FrozenContext) -> tuple[list[float], dict[str, float]]:
    """Record the total while preserving the data for downstream steps."""
    return data, {"total": sum(data)}


@pipeline_step
def shift(data: list[float], ctx: FrozenContext, *, by: float) -> list[float]:
    """``by`` has no default: it comes from the context when not given."""
    return [x + by for x in data]


@pipeline_step
def rounded(data: list[float], digits: int = 2) -> list[float]:
    """A step without ``ctx``: its factory takes any keywords (checked when it is made)."""
    return [round(x, digits) for x in data]


boost_total = treatment("boost_total", {"delta": 10.0})


@treatment("double_scale")
def double_scale(ctx: FrozenContext) -> Mapping[str, Any]:
    """A callable treatment: it returns the values to overlay."""
    return {"factor": 2.0}


@verifier
def welch_t_test(
    baseline: Mapping[str, Sequence[float]],
    treatment: Mapping[str, Sequence[float]],
    alpha: float = 0.05,
) -> dict[str, float | bool]:
    """A tiny mean-difference check standing in for a real test."""
    b, t = baseline["total"], treatment["total"]
    diff = sum(t) / len(t) - sum(b) / len(b)
    p_value = 0.0 if diff > 0 else 1.0
    return {"p_value": p_value, "significant": p_value < alpha}


@verifier()
def always_passes(baseline: Mapping[str, Any], treatment: Mapping[str, Any]) -> dict[str, float]:
    """A verifier decorated with parentheses."""
    return {"p_value": 0.0}


@hypothesis(verifier=welch_t_test(alpha=0.01), metrics="total")
def order_by_p_value(result: dict[str, float]) -> float:
    """Rank treatments by p-value, lowest first."""
    return result.get("p_value", 1.0)


@hypothesis(verifier=stats.welch_t_test(alpha=0.05, alternative="greater"), metrics=["total"])
def by_difference(result: Mapping[str, Any]) -> float:
    """Rank by the built-in test's estimated difference, largest first."""
    return -float(result["difference"])


experiment = (
    Experiment.builder("typed")
    .datasource(fetch_numbers())
    .add_step(add_delta())
    .add_step(scale(factor=1.0))
    .add_step(summarize())
    .plugins([ParallelExecution(max_workers=2)])
    .treatments([boost_total(), double_scale])
    .hypotheses([order_by_p_value, by_difference])
    .replicates(4)
    .build()
)

# The types the decorators keep.
numbers: list[int] = fetch_numbers().fetch(standalone_context())
sized: DataSource = sized_numbers(size=2)
step: PipelineStep = add_delta(delta=5.0)
moved: list[float] = add_delta(delta=1.5)([1, 2], standalone_context())
from_context = shift()  # `by` comes from the context: a call with no argument type-checks
explicit = shift(by=2.0)
any_keywords = rounded(digits=1)
bound: VerifierCallable[dict[str, float | bool]] = welch_t_test(alpha=0.1)
verdict: dict[str, float | bool] = bound({"total": [1.0, 2.0]}, {"total": [3.0, 4.0]})
strict_alpha: float = welch_t_test.fn({"total": [1.0]}, {"total": [2.0]}, 0.01)["p_value"]
a_hypothesis: Hypothesis = order_by_p_value
treatments: list[Treatment] = [boost_total, double_scale, boost_total()]


@inject_from_ctx
def offset(data: int, ctx: FrozenContext, *, by: int = 0) -> int:
    """A plain function whose missing parameters come from the context."""
    return data + by


shifted: int = offset(1, standalone_context({"by": 2}), by=3)


if __name__ == "__main__":
    result = experiment.run()
    print("baseline total:", result.metrics.baseline.metrics["total"])
    print("errors:", dict(result.errors))
