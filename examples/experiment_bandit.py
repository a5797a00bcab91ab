"""Two bandit strategies on the same simulated arms: has Thompson sampling lower regret?

Each replicate draws a fresh 5-armed Bernoulli bandit from ``ctx.rng_for("arms")``; both
conditions see the same arms and the same reward noise (common random numbers), so the
comparison is paired. Needs only numpy and scipy.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import ttest_rel

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
def bandit(ctx: FrozenContext, *, arms: int = 5) -> np.ndarray:
    """The success probability of each arm, drawn per replicate."""
    return ctx.rng_for("arms").uniform(0.2, 0.8, size=arms)


@pipeline_step()
def play(probs: np.ndarray, ctx: FrozenContext, *, policy: str, horizon: int = 1500) -> float:
    """Play ``horizon`` rounds with ``policy``; return the total regret."""
    noise = ctx.rng_for("rewards").random(size=(horizon, len(probs)))
    explore = ctx.rng_for("policy")
    pulls = np.zeros(len(probs))
    wins = np.zeros(len(probs))
    regret = 0.0
    for t in range(horizon):
        if t < len(probs):
            arm = t
        elif policy == "thompson":
            arm = int(np.argmax(explore.beta(wins + 1, pulls - wins + 1)))
        elif explore.random() < 0.1:  # epsilon-greedy
            arm = int(explore.integers(len(probs)))
        else:
            arm = int(np.argmax(wins / pulls))
        pulls[arm] += 1
        wins[arm] += noise[t, arm] < probs[arm]
        regret += probs.max() - probs[arm]
    return regret


@pipeline_step()
def record(regret: float, ctx: FrozenContext):
    return regret, {"regret": regret}


thompson = treatment("thompson", {"policy": "thompson"})


@verifier
def paired_less(baseline, treatment, alpha: float = 0.05):
    """One-sided paired t-test: is the treatment's regret lower than the baseline's?"""
    result = ttest_rel(treatment["regret"], baseline["regret"], alternative="less")
    return {"p_value": float(result.pvalue), "significant": bool(result.pvalue < alpha)}


@hypothesis(verifier=paired_less(), metrics="regret")
def lower_regret(result):
    return result["p_value"]


experiment = (
    Experiment.builder("bandit")
    .datasource(bandit())
    .add_step(play())
    .add_step(record())
    .initial_ctx({"policy": "epsilon-greedy"})
    .treatments([thompson])
    .hypotheses([lower_regret])
    .replicates(30)
    .build()
)
