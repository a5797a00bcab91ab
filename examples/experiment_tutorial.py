"""The crystallize tutorial's experiment, collected by ``pytest --crystallize examples``.

The data source returns constants, so every replicate gives the same total: the verdict
passes and the summary flags the degenerate input (zero variance in both conditions).
"""

from __future__ import annotations

from scipy.stats import ttest_ind

from pytest_crystallize import (
    Experiment,
    FrozenContext,
    data_source,
    hypothesis,
    pipeline_step,
    treatment,
    verifier,
)


@data_source
def fetch_numbers(ctx: FrozenContext) -> list[int]:
    """Return the baseline payload that enters the pipeline."""
    return [0, 0, 0]


@pipeline_step()
def add_delta(data: list[int], ctx: FrozenContext, *, delta: float = 0.0) -> list[float]:
    """Inject a configurable delta (supplied by treatments or defaults)."""
    return [x + delta for x in data]


@pipeline_step()
def summarize(data: list[float], ctx: FrozenContext):
    """Record the total while preserving the data for downstream steps."""
    return data, {"total": sum(data)}


boost_total = treatment("boost_total", {"delta": 10.0})


@verifier
def welch_t_test(baseline, treatment, alpha: float = 0.05):
    stat, p_value = ttest_ind(treatment["total"], baseline["total"], equal_var=False)
    return {"p_value": p_value, "significant": p_value < alpha}


@hypothesis(verifier=welch_t_test(), metrics="total")
def order_by_p_value(result: dict[str, float]) -> float:
    return result.get("p_value", 1.0)


experiment = (
    Experiment.builder("basic")
    .datasource(fetch_numbers())
    .add_step(add_delta())
    .add_step(summarize())
    .treatments([boost_total()])
    .hypotheses([order_by_p_value])
    .replicates(12)
    .build()
)
