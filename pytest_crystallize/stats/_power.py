"""What a test can reach (the smallest p-value at n) and how many replicates it needs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, final

from .._engine.errors import CrystallizeUsageError
from ._common import (
    BOOTSTRAP_RESAMPLES,
    MAX_RESAMPLES,
    POWER,
    min_detectable,
    stdev,
    t_parts,
    t_quantile,
)
from ._numbers import number


def min_pvalue(verifier_callable: Any, n: int) -> float:
    """The smallest p-value the built-in verifier can produce with ``n`` replicates per
    condition (0.0 for tests without such a floor, or for verifiers that are not built in)."""
    factory = getattr(verifier_callable, "factory", None)
    params = dict(getattr(verifier_callable, "params", {}))
    name = getattr(factory, "name", "")
    two_sided = params.get("alternative", "two-sided") == "two-sided"
    sides = 2 if two_sided else 1
    if name == "auto":
        name = "permutation_test" if n < 10 else ""
    resampling = name in ("permutation_test", "bootstrap_ci")  # bootstrap decides by permutation
    if name == "wilcoxon" or (resampling and params.get("paired", True)):
        floor = sides / 2**n
    elif name == "mann_whitney" or resampling:
        floor = sides / math.comb(2 * n, n)
    else:
        return 0.0
    if resampling:
        default = BOOTSTRAP_RESAMPLES if name == "bootstrap_ci" else MAX_RESAMPLES
        resamples = min(int(params.get("n_resamples", default)), MAX_RESAMPLES)
        floor = max(floor, sides / (resamples + 1))  # Monte Carlo: (0 + 1) / (B + 1) per side
    return float(min(1.0, floor))


@final
@dataclass(frozen=True, slots=True)
class PlanResult:
    """How many replicates a comparison needs to detect ``effect`` with ``power``."""

    treatment: str
    metric: str
    effect: float
    sd: float
    paired: bool
    pilot_replicates: int
    replicates_needed: int
    mde_now: float

    def __str__(self) -> str:
        kind = "paired differences" if self.paired else "each condition"
        return (
            f"{self.treatment} on {self.metric!r}: {self.replicates_needed} replicates to "
            f"detect {number(self.effect, sign=True)} with {POWER:.0%} power (sd of {kind} "
            f"{number(self.sd)}; the {self.pilot_replicates}-replicate pilot detects "
            f"{number(self.mde_now)})"
        )


def replicates_needed(
    sd: float, effect: float, *, paired: bool, alpha: float = 0.05, power: float = POWER
) -> int:
    """The smallest n at which a two-sided t-test detects ``effect`` with ``power``."""
    if effect == 0:
        msg = "plan(effect=...) must not be 0"
        raise CrystallizeUsageError(msg)
    if sd == 0:
        return 2
    for n in range(2, 1_000_001):
        se = sd / math.sqrt(n) if paired else sd * math.sqrt(2 / n)
        df = n - 1 if paired else 2 * n - 2
        if (t_quantile(1 - alpha / 2, df) + t_quantile(power, df)) * se <= abs(effect):
            return n
    return 1_000_000


def plan(
    result: Any,
    metric: str,
    effect: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = POWER,
) -> list[PlanResult]:
    """From a pilot ``Result``, the replicates each treatment needs to detect ``effect``.

    ``relative=True`` reads ``effect`` as a fraction of the baseline mean. Paired (the
    replicates share seeds) on the standard deviation of the per-replicate differences.
    """
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    base = result.metrics.baseline
    if metric not in base.metrics:
        known = ", ".join(sorted(base.metrics)) or "none"
        msg = f"plan(): the pilot has no metric {metric!r}; recorded metrics: {known}"
        raise CrystallizeUsageError(msg)
    plans = []
    for name, treated in result.metrics.treatments.items():
        rows = [
            i
            for i, (x, y) in enumerate(
                zip(base.metrics[metric], treated.metrics[metric], strict=True)
            )
            if x is not None and y is not None
        ]
        b = np.array([base.metrics[metric][i] for i in rows], dtype=float)
        t = np.array([treated.metrics[metric][i] for i in rows], dtype=float)
        target = effect * abs(float(b.mean())) if relative else effect
        sd = stdev(t - b)
        _, se, df = t_parts(b, t, True)
        plans.append(
            PlanResult(
                treatment=name,
                metric=metric,
                effect=target,
                sd=sd,
                paired=True,
                pilot_replicates=len(rows),
                replicates_needed=replicates_needed(
                    sd, target, paired=True, alpha=alpha, power=power
                ),
                mde_now=min_detectable(se, df, alpha, "two-sided"),
            )
        )
    return plans
