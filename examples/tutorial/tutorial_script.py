"""The crystallize tutorial "Building Your First Experiment", verbatim, on pytest_crystallize.

Only the import module changed (``crystallize`` -> ``pytest_crystallize``); the prints at the
end show what the tutorial's "What you get" list promises. Run it with
``python examples/tutorial/tutorial_script.py``.
"""

from __future__ import annotations

from pytest_crystallize import FrozenContext, data_source


@data_source
def fetch_numbers(ctx: FrozenContext) -> list[int]:
    """Return the baseline payload that enters the pipeline."""
    return [0, 0, 0]


from pytest_crystallize import pipeline_step  # noqa: E402


@pipeline_step()
def add_delta(data: list[int], ctx: FrozenContext, *, delta: float = 0.0) -> list[float]:
    """Inject a configurable delta (supplied by treatments or defaults)."""
    return [x + delta for x in data]


@pipeline_step()
def summarize(data: list[float], ctx: FrozenContext):
    """Record the total while preserving the data for downstream steps."""
    return data, {"total": sum(data)}


from scipy.stats import ttest_ind  # noqa: E402

from pytest_crystallize import hypothesis, treatment, verifier  # noqa: E402

boost_total = treatment("boost_total", {"delta": 10.0})


@verifier
def welch_t_test(baseline, treatment, alpha: float = 0.05):
    stat, p_value = ttest_ind(treatment["total"], baseline["total"], equal_var=False)
    return {"p_value": p_value, "significant": p_value < alpha}


@hypothesis(verifier=welch_t_test(), metrics="total")
def order_by_p_value(result: dict[str, float]) -> float:
    return result.get("p_value", 1.0)


from pytest_crystallize import Experiment, ParallelExecution, Pipeline  # noqa: E402, F401

experiment = (
    Experiment.builder("basic")
    .datasource(fetch_numbers())
    .add_step(add_delta())
    .add_step(summarize())
    .plugins([ParallelExecution(max_workers=4)])
    .treatments([boost_total()])
    .hypotheses([order_by_p_value])
    .replicates(12)
    .build()
)
result = experiment.run()

# --- what you get -------------------------------------------------------------------------

print("baseline total:", result.metrics.baseline.metrics["total"])
print("boost_total total:", result.metrics.treatments["boost_total"].metrics["total"])
print("hypothesis results:", dict(result.get_hypothesis("order_by_p_value").results))
print("errors:", dict(result.errors))
