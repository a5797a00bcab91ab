"""The tutorial's style without annotations: mypy (allowing unannotated functions) must accept it.

mypy ignores the parameter names of an unannotated function, so the decorators must not take
``scale``'s ``factor`` or ``sized``'s ``size`` for ``ctx``: their factories take any keywords.
"""

from __future__ import annotations

from pytest_crystallize import (
    Experiment,
    data_source,
    hypothesis,
    pipeline_step,
    treatment,
    verifier,
)


@data_source
def fetch_numbers(ctx):
    return [0, 0, 0]


@data_source()
def sized(size=3):
    return [0] * size


@pipeline_step()
def add_delta(data, ctx, *, delta=0.0):
    return [x + delta for x in data]


@pipeline_step
def scale(data, factor=1.0):
    return [x * factor for x in data]


@pipeline_step()
def summarize(data, ctx):
    return data, {"total": sum(data)}


boost_total = treatment("boost_total", {"delta": 10.0})


@verifier
def welch_t_test(baseline, treatment, alpha=0.05):
    return {"p_value": 0.0 if alpha else 1.0, "significant": True}


@hypothesis(verifier=welch_t_test(alpha=0.01), metrics="total")
def order_by_p_value(result):
    return result.get("p_value", 1.0)


experiment = (
    Experiment.builder("untyped")
    .datasource(sized(size=2))
    .add_step(add_delta())
    .add_step(scale(factor=2.0))
    .add_step(summarize())
    .treatments([boost_total()])
    .hypotheses([order_by_p_value])
    .replicates(3)
    .build()
)
source = fetch_numbers()
