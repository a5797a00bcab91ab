"""What a test can reach (the smallest p-value at n) and how many replicates it needs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, final

from .._engine.errors import CrystallizeUsageError
from .._engine.numbers import finite, number
from ._common import (
    BOOTSTRAP_RESAMPLES,
    MAX_RESAMPLES,
    POWER,
    min_detectable,
    stdev,
    t_parts,
    t_quantile,
)

_MAX_REPLICATES = 1_000_000


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
    power: float = POWER

    def __str__(self) -> str:
        kind = "paired differences" if self.paired else "each condition"
        return (
            f"{self.treatment} on {self.metric!r}: {self.replicates_needed} replicates to "
            f"detect {number(self.effect, sign=True)} with {self.power:.0%} power (sd of {kind} "
            f"{number(self.sd)}; the {self.pilot_replicates}-replicate pilot detects "
            f"{number(self.mde_now)})"
        )


def t_test_power(effect_size: float, n: int, *, paired: bool, alpha: float) -> float:
    """The power of a two-sided t-test at ``n`` replicates per condition to detect a true
    difference of ``effect_size`` standard deviations (of the paired differences when
    ``paired``, else of each condition): the noncentral t, both tails, as statsmodels'
    ``TTestPower`` / ``TTestIndPower``."""
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    df = n - 1 if paired else 2 * n - 2
    noncentrality = abs(effect_size) * math.sqrt(n if paired else n / 2)
    critical = t_quantile(1 - alpha / 2, df)
    upper = float(stats.nct.sf(critical, df, noncentrality))
    lower = float(stats.nct.cdf(-critical, df, noncentrality))
    return upper + lower


def replicates_needed(
    sd: float, effect: float, *, paired: bool, alpha: float = 0.05, power: float = POWER
) -> int:
    """The smallest n (at least 2) at which a two-sided t-test detects ``effect`` with
    ``power``: the exact noncentral-t power at n reaches ``power``, at n - 1 it does not."""
    if effect == 0:
        msg = "plan(effect=...) must not be 0"
        raise CrystallizeUsageError(msg)
    if sd == 0:
        return 2
    size = abs(effect) / sd
    # Start at the normal approximation, then step to the exact answer: power grows with n.
    z = t_quantile(1 - alpha / 2, math.inf) + t_quantile(power, math.inf)
    guess = (z / size) ** 2 * (1 if paired else 2)
    n = min(max(2, math.ceil(guess)), _MAX_REPLICATES)
    while n > 2 and t_test_power(size, n - 1, paired=paired, alpha=alpha) >= power:
        n -= 1
    while n < _MAX_REPLICATES and t_test_power(size, n, paired=paired, alpha=alpha) < power:
        n += 1
    return n


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
                power=power,
            )
        )
    return plans


@final
@dataclass(frozen=True, slots=True)
class PilotPlan:
    """Plan mode's numbers for one verdict: the pilot's replicates say how many replicates
    detect ``effect`` (``relative``: a fraction of the baseline mean) with ``power``.

    ``change`` is the effect as an absolute change of the metric; ``sd`` the standard
    deviation of the pilot's paired differences; ``replicates_needed`` is ``None`` when the
    pilot has fewer than 2 usable pairs or the effect comes to a change of 0; ``mde`` is what
    the pilot itself detects.
    """

    metric: str
    effect: float
    relative: bool
    change: float
    alpha: float
    sd: float | None
    pilot_replicates: int
    replicates_needed: int | None
    mde: float | None
    power: float = POWER

    @property
    def message(self) -> str:
        """The verdict's message in plan mode."""
        if self.pilot_replicates < 2:
            return f"plan mode: the pilot has {self.pilot_replicates} usable pairs; need 2 or more"
        if self.replicates_needed is None:
            return (
                f"plan mode: {number(100 * self.effect)}% of the baseline mean of "
                f"{self.metric!r} (0) is no change; give an absolute effect, such as "
                f"--crystallize-plan 0.5"
            )
        return (
            f"plan mode (pilot of {self.pilot_replicates} replicates): {self.replicates_needed} "
            f"replicates detect a change of {number(self.change, sign=True)} in {self.metric!r} "
            f"with {self.power:.0%} power (sd of paired differences {number(self.sd)}); the "
            f"pilot itself detects {number(self.mde)}"
        )

    def to_json(self) -> dict[str, Any]:
        """The numbers as plain data (the JSON report's ``plan`` of a verdict)."""
        return {
            "metric": self.metric,
            "effect": self.effect,
            "relative": self.relative,
            "change": self.change,
            "power": self.power,
            "alpha": self.alpha,
            "sd": self.sd,
            "pilot_replicates": self.pilot_replicates,
            "replicates_needed": self.replicates_needed,
            "mde": self.mde,
        }


def pilot_plan(
    baseline: Sequence[Any],
    treatment: Sequence[Any],
    metric: str,
    effect: tuple[float, bool],
    *,
    alpha: float,
    mde: float | None,
) -> PilotPlan:
    """Plan mode's numbers for one verdict: from the pilot's values of ``metric`` per
    replicate (``None`` where missing), the replicates that detect ``effect`` (a size, and
    whether it is relative to the baseline mean) with 80% power; ``mde``: what the pilot
    itself detects."""
    size, relative = effect
    pairs = [(finite(x), finite(y)) for x, y in zip(baseline, treatment, strict=True)]
    diffs = [y - x for x, y in pairs if x is not None and y is not None]
    befores = [x for x, _ in pairs if x is not None]
    mean_b = sum(befores) / len(befores) if befores else 0.0
    target = size * abs(mean_b) if relative else size
    sd = needed = None
    if len(diffs) >= 2:
        mean_d = sum(diffs) / len(diffs)
        sd = math.sqrt(sum((d - mean_d) ** 2 for d in diffs) / (len(diffs) - 1))
        if target != 0:
            needed = replicates_needed(sd, target, paired=True, alpha=alpha)
    return PilotPlan(
        metric=metric,
        effect=size,
        relative=relative,
        change=target,
        alpha=alpha,
        sd=sd,
        pilot_replicates=len(diffs),
        replicates_needed=needed,
        mde=mde,
    )
