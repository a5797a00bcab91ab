"""Sequential replicates: judge after every quarter of the replicates, stop when it is clear.

A new ranking model against the current one, on simulated click-through data. Each replicate
draws a day of traffic from ``ctx.rng_for("traffic")``; both conditions see the same traffic
(common random numbers), so the comparison is paired. ``.sequential(looks=4)`` makes the 48
replicates a maximum: the experiment is judged after 12, 24, 36 and 48 replicates per
condition with O'Brien-Fleming alpha spending, and stops at the first look whose boundary
the p-value crosses. ``ranker_v2`` really is better and usually stops at an early look;
the ``reshuffle`` experiment (the same model, only the tie-break order changes) is an A/A
test gated by non-inferiority: it passes as soon as the CI rules out a 2% loss.

Run it with ``pytest --crystallize examples/experiment_sequential.py`` (add
``--crystallize-sequential=off`` to run every replicate, for an audit).
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
def traffic(ctx: FrozenContext, *, sessions: int = 400) -> np.ndarray:
    """Each session's true relevance of the top result, drawn per replicate."""
    return ctx.rng_for("traffic").beta(2.0, 5.0, size=sessions)


@pipeline_step()
def serve(relevance: np.ndarray, ctx: FrozenContext, *, lift: float = 0.0, order: str = "patience"):
    """Clicks when the (possibly improved) relevance beats the session's patience; ``order``
    names the random stream that breaks ties (another order, other noise, same model)."""
    patience = ctx.rng_for(order).random(size=relevance.size)
    clicks = (np.clip(relevance + lift, 0.0, 1.0) > patience).mean()
    return clicks, {"ctr": float(clicks)}


better_ctr = Hypothesis(
    verifier=stats.paired_t_test(alternative="greater"), metrics="ctr", name="better_ctr"
)
# A refactor must not cost more than 2% of the click-through rate (non-inferiority).
not_worse = Hypothesis(
    verifier=stats.non_inferior(margin=0.02, relative=True), metrics="ctr", name="not_worse"
)

ranker = (
    Experiment.builder("ranker")
    .datasource(traffic())
    .add_step(serve())
    .treatments([treatment("ranker_v2", {"lift": 0.004})])
    .hypotheses([better_ctr])
    .replicates(48)
    .sequential(looks=4)
    .build()
)

reshuffle = (
    Experiment.builder("reshuffle")
    .datasource(traffic())
    .add_step(serve())
    .treatments([treatment("new_tie_break", {"order": "tie-break-v2"})])
    .hypotheses([not_worse])
    .replicates(48)
    .sequential(looks=4)
    .build()
)
