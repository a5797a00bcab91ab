"""A failing verdict, kept out of ``pytest --crystallize examples`` (its name does not match
``crystallize_files``); run it explicitly::

    pytest --crystallize examples/failing_demo.py

A "refactor" of a classifier's threshold was meant to raise accuracy; it lowers it, and the
paired test says so with its p-value.
"""

from __future__ import annotations

import numpy as np

from pytest_crystallize import (
    Experiment,
    FrozenContext,
    Hypothesis,
    data_source,
    pipeline_step,
    stats,
    treatment,
)


@data_source
def labelled_scores(ctx: FrozenContext, *, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a noisy classifier and the true labels."""
    rng = ctx.rng_for("data")
    labels = rng.random(n) < 0.5
    scores = labels + rng.normal(0.0, 0.6, size=n)
    return scores, labels


@pipeline_step()
def accuracy(data: tuple[np.ndarray, np.ndarray], ctx: FrozenContext, *, threshold: float):
    scores, labels = data
    value = float(np.mean((scores > threshold) == labels))
    return value, {"accuracy": value}


refactor = treatment("refactor", {"threshold": 0.65})


refactor_is_better = Hypothesis(
    verifier=stats.paired_t_test(alternative="greater"),
    metrics="accuracy",
    name="refactor_is_better",
)


experiment = (
    Experiment.builder("threshold_refactor")
    .datasource(labelled_scores())
    .add_step(accuracy())
    .initial_ctx({"threshold": 0.5})
    .treatments([refactor])
    .hypotheses([refactor_is_better])
    .replicates(20)
    .build()
)
