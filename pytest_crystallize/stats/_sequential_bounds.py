"""Group-sequential boundaries: alpha spending, the z bounds of each look and their cost.

The look statistics of a design with information fractions ``t_1 < ... < t_K = 1`` are
jointly normal, ``Z_j ~ N(eta * sqrt(t_j), 1)`` with ``corr(Z_j, Z_k) = sqrt(t_j / t_k)``
(``j <= k``), where ``eta`` is the drift: the true effect in standard errors of the final
estimate. Every probability here is a rectangle probability of that distribution, computed
by ``scipy.stats.multivariate_normal.cdf`` (Genz's randomized quasi-Monte Carlo, with a fixed
random state, so each result is deterministic) and solved for with ``scipy.optimize.brentq``.
See :mod:`._sequential` for how the bounds are meant to be used.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist
from typing import Any

SPENDING = ("obrien-fleming", "pocock")
CLASSIC = ("pocock", "obrien-fleming")
ABSEPS = 1e-5  # absolute error of each rectangle probability (exit probabilities: far less)
RELEPS = 1e-5
QMC_SEED = 20261203  # the quasi-Monte Carlo randomization: the same numbers on every call
FUTILITY_POWER = 0.025  # futile when the predictive power of the last look is below 2.5%
XTOL = 1e-6  # brentq's tolerance on a bound or a drift


def z_quantile(p: float) -> float:
    """The standard normal quantile of ``p`` (stdlib: no scipy needed)."""
    return NormalDist().inv_cdf(p)


def upper_tail(z: float) -> float:
    """``1 - Phi(z)``, accurate far into the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def check_alpha(alpha: Any, function: str, name: str = "alpha", example: str = "0.05") -> float:
    """``alpha`` as a float in (0, 1), or a ``ValueError`` naming ``function`` and ``name``."""
    ok = isinstance(alpha, numbers.Real) and not isinstance(alpha, bool)
    value = float(alpha) if ok else math.nan
    if not 0.0 < value < 1.0:
        msg = f"{function}({name}={alpha!r}): {name} must be a number strictly between 0 and 1"
        msg += f", e.g. {example}"
        raise ValueError(msg)
    return value


def check_fractions(fractions: Any, function: str) -> tuple[float, ...]:
    """The information fractions as floats, strictly increasing in (0, 1] and ending at 1."""
    shown = f"{function}(fractions={fractions!r})"
    try:
        values = tuple(float(t) for t in fractions)
    except (TypeError, ValueError):
        msg = f"{shown}: fractions must be a sequence of numbers, e.g. (0.25, 0.5, 0.75, 1.0)"
        raise ValueError(msg) from None
    if not values:
        msg = f"{shown}: give at least one look; a single look is (1.0,)"
        raise ValueError(msg)
    for before, after in zip((0.0, *values), values, strict=False):
        if not before < after <= 1.0:
            msg = (
                f"{shown}: the information fractions must increase strictly within (0, 1]; "
                f"{after!r} follows {before!r}. Pass e.g. (0.25, 0.5, 0.75, 1.0)"
            )
            raise ValueError(msg)
    if values[-1] != 1.0:
        msg = f"{shown}: the last look is the full information, so fractions must end at 1.0"
        raise ValueError(msg + f", not {values[-1]!r}")
    return values


def check_bounds(bounds: Any, function: str, looks: int | None = None) -> tuple[float, ...]:
    """The z bounds as positive floats (``inf`` allowed: a look that never stops)."""
    shown = f"{function}(bounds={bounds!r})"
    try:
        values = tuple(float(c) for c in bounds)
    except (TypeError, ValueError):
        msg = f"{shown}: bounds must be a sequence of z values, e.g. efficacy_bounds(...)"
        raise ValueError(msg) from None
    if not values or any(not c > 0.0 for c in values):
        msg = f"{shown}: bounds must be positive z values, one per look (from efficacy_bounds)"
        raise ValueError(msg)
    if looks is not None and len(values) != looks:
        msg = f"{shown}: {len(values)} bounds for {looks} fractions; give one bound per look"
        raise ValueError(msg)
    return values


def spent(kind: str, t: float, alpha: float) -> float:
    """The two-sided alpha spent by information fraction ``t`` (Lan-DeMets spending).

    ``"obrien-fleming"``: ``2 - 2 Phi(z_{1 - alpha/2} / sqrt(t))``; ``"pocock"``:
    ``alpha * ln(1 + (e - 1) t)``. Both spend all of ``alpha`` at ``t = 1``.
    """
    level = check_alpha(alpha, "spent")
    if kind not in SPENDING:
        msg = f"spent(kind={kind!r}): unknown spending function; choose one of {SPENDING}"
        raise ValueError(msg)
    if not (isinstance(t, numbers.Real) and 0.0 < float(t) <= 1.0):
        msg = f"spent(t={t!r}): the information fraction must be in (0, 1], e.g. 0.5"
        raise ValueError(msg)
    if kind == "pocock":
        return level * math.log(1.0 + (math.e - 1.0) * float(t))
    return min(level, 2.0 * upper_tail(z_quantile(1.0 - level / 2.0) / math.sqrt(float(t))))


def box(
    lower: Sequence[float], upper: Sequence[float], fractions: Sequence[float], drift: float = 0.0
) -> float:
    """``P(lower_j < Z_j < upper_j for every look j)`` at ``drift`` (limits may be infinite)."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    t = np.asarray(fractions, dtype=float)
    mean = drift * np.sqrt(t)
    low, high = np.asarray(lower, dtype=float) - mean, np.asarray(upper, dtype=float) - mean
    if len(t) == 1:
        return float(max(0.0, stats.norm.cdf(high[0]) - stats.norm.cdf(low[0])))
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    # A fresh frozen distribution seeds the quasi-Monte Carlo randomization on every call
    # (``seed=`` works from scipy 1.10, where ``lower_limit`` arrived, to today's ``rng``).
    frozen = stats.multivariate_normal(
        mean=np.zeros(len(t)), cov=cov, seed=QMC_SEED, abseps=ABSEPS, releps=RELEPS
    )
    return float(min(1.0, max(0.0, frozen.cdf(high, lower_limit=low))))


def exit_upper(bounds: Sequence[float], fractions: Sequence[float], x: float, eta: float) -> float:
    """``P(|Z_j| < c_j before the last look given, Z_k >= x at it)`` at drift ``eta``."""
    k = len(fractions)
    lower = [*(-c for c in bounds[: k - 1]), x]
    upper = [*bounds[: k - 1], math.inf]
    return box(lower, upper, fractions, eta)


def efficacy_bounds(
    fractions: Sequence[float], alpha: float = 0.05, spending: str = "obrien-fleming"
) -> tuple[float, ...]:
    """The two-sided z bounds ``c_1..c_K`` of looks at the information ``fractions``.

    ``c_k`` solves ``P(|Z_1| < c_1, ..., |Z_{k-1}| < c_{k-1}, |Z_k| >= c_k) =
    spent(t_k) - spent(t_{k-1})`` under no effect, so the design's false-positive rate is
    ``alpha`` (futility stops, which the bounds ignore, only lower it). A look whose share of
    alpha underflows to 0 gets ``inf`` (it can never stop for efficacy).
    """
    values = check_fractions(fractions, "efficacy_bounds")
    level = check_alpha(alpha, "efficacy_bounds")
    if spending not in SPENDING:
        msg = f"efficacy_bounds(spending={spending!r}): unknown spending function; choose"
        msg += f" one of {SPENDING}"
        raise ValueError(msg)
    return _efficacy_bounds(values, level, spending)


@lru_cache(maxsize=64)
def _efficacy_bounds(fractions: tuple[float, ...], alpha: float, kind: str) -> tuple[float, ...]:
    from scipy.optimize import brentq  # lazy: scipy takes seconds to import

    bounds: list[float] = []
    before = 0.0
    for k, t in enumerate(fractions, start=1):
        total = spent(kind, t, alpha)
        share, before = total - before, total
        if share <= 0.0:
            bounds.append(math.inf)
            continue
        free = -z_quantile(share / 2.0)
        if k == 1:
            bounds.append(free)
            continue

        def excess(c: float, k: int = k, share: float = share) -> float:
            return 2.0 * exit_upper([*bounds, c], fractions[:k], c, 0.0) - share

        bounds.append(float(brentq(excess, 0.0, free + 0.5, xtol=XTOL)))
    return tuple(bounds)


def classic_bounds(looks: int, alpha: float = 0.05, kind: str = "pocock") -> tuple[float, ...]:
    """The original Pocock (one constant ``c``) or O'Brien-Fleming (``c * sqrt(K / k)``)
    bounds for ``looks`` equally spaced looks with two-sided false-positive rate ``alpha``."""
    if isinstance(looks, bool) or not isinstance(looks, numbers.Integral) or looks < 1:
        msg = f"classic_bounds(looks={looks!r}): the number of looks must be an integer >= 1"
        raise ValueError(msg)
    level = check_alpha(alpha, "classic_bounds")
    if kind not in CLASSIC:
        msg = f"classic_bounds(kind={kind!r}): unknown design; choose one of {CLASSIC}"
        raise ValueError(msg)
    return _classic_bounds(int(looks), level, kind)


@lru_cache(maxsize=64)
def _classic_bounds(looks: int, alpha: float, kind: str) -> tuple[float, ...]:
    from scipy.optimize import brentq  # lazy: scipy takes seconds to import

    fractions = [k / looks for k in range(1, looks + 1)]
    shape = [1.0 if kind == "pocock" else math.sqrt(looks / k) for k in range(1, looks + 1)]

    def excess(c: float) -> float:
        scaled = [c * w for w in shape]
        return 1.0 - box([-b for b in scaled], scaled, fractions) - alpha

    free = z_quantile(1.0 - alpha / 2.0)
    c = float(brentq(excess, free - 0.5, free + 2.0 * math.sqrt(looks), xtol=XTOL))
    return tuple(c * w for w in shape)


def max_sample_inflation(
    bounds: Sequence[float], fractions: Sequence[float], alpha: float = 0.05, power: float = 0.8
) -> float:
    """The design's maximum sample size over the fixed design's with the same ``alpha`` and
    ``power``: the squared ratio of the drifts that give each design ``power``."""
    values = check_fractions(fractions, "max_sample_inflation")
    limits = check_bounds(bounds, "max_sample_inflation", len(values))
    level = check_alpha(alpha, "max_sample_inflation")
    target = check_alpha(power, "max_sample_inflation", "power", "0.8")
    if target <= level:
        msg = f"max_sample_inflation(power={power!r}): power must exceed alpha={alpha!r}"
        raise ValueError(msg + ", e.g. power=0.8 with alpha=0.05")
    from scipy.optimize import brentq  # lazy: scipy takes seconds to import

    z = z_quantile(1.0 - level / 2.0)

    def fixed(eta: float) -> float:
        return upper_tail(z - eta) + upper_tail(z + eta) - target

    def sequential(eta: float) -> float:
        return 1.0 - box([-c for c in limits], limits, values, eta) - target

    reach = max(z, min(limits)) + abs(z_quantile(target)) + 4.0
    eta_fixed = float(brentq(fixed, 0.0, reach, xtol=XTOL))
    eta_design = float(brentq(sequential, 0.0, reach + min(limits[-1], 40.0), xtol=XTOL))
    return (eta_design / eta_fixed) ** 2


def nominal_levels(bounds: Sequence[float]) -> tuple[float, ...]:
    """The two-sided nominal p-value thresholds ``2 (1 - Phi(c_k))`` of the looks.

    A test crosses look ``k`` when its own p-value (t distribution for t tests, the exact or
    permutation null otherwise) is at most ``nominal_levels(bounds)[k - 1]``.
    """
    return tuple(2.0 * upper_tail(c) for c in check_bounds(bounds, "nominal_levels"))


def futility_levels(
    bounds: Sequence[float],
    fractions: Sequence[float],
    *,
    two_sided: bool,
    power: float = FUTILITY_POWER,
) -> tuple[float, ...]:
    """The p-values above which each interim look is futile (non-binding); the last: 1.0.

    A look is futile when the predictive power, the chance of crossing the last look's
    bound ``c_K`` averaged over the effects the data so far allow (a flat prior on the
    drift), is below ``power``. With the look's statistic ``z_k`` at fraction ``t_k`` the
    last look's statistic is predicted ``N(z_k / sqrt(t_k), (1 - t_k) / t_k)``, so look ``k``
    is futile when ``z_k < c_K sqrt(t_k) - sqrt(1 - t_k) z_(1 - power)``: at early looks
    only an estimate clearly pointing the wrong way, at late ones also a weak one pointing
    the right way. The levels are for the one-sided p-value of ``z_k`` in the favourable
    direction (above ``1 - Phi(that)``): a one-sided test's or gate's own, or a two-sided
    test's in the direction called better; with ``two_sided=True``, for a two-sided p-value
    read by ``|z_k|`` (above ``2 (1 - Phi(that))``, or never when it is not positive).
    """
    values = check_fractions(fractions, "futility_levels")
    limits = check_bounds(bounds, "futility_levels", len(values))
    floor = check_alpha(power, "futility_levels", "power", "0.025")
    spread = z_quantile(1.0 - floor)
    levels = []
    for t in values[:-1]:
        wedge = limits[-1] * math.sqrt(t) - math.sqrt(1.0 - t) * spread
        if not two_sided:
            levels.append(upper_tail(wedge))
        else:
            levels.append(2.0 * upper_tail(wedge) if wedge > 0 else 1.0)
    return (*levels, 1.0)


def holm_at_look(pvalues: Sequence[float], level: float) -> list[bool]:
    """Holm's step-down at one look's nominal ``level``: which comparisons cross (in order).

    The i-th smallest of ``m`` p-values crosses when it and every smaller one are at most
    ``level / (m - rank + 1)``.
    """
    threshold = check_alpha(level, "holm_at_look", "level")
    values = [float(p) for p in pvalues]
    bad = [p for p in values if not 0.0 <= p <= 1.0]
    if bad:
        msg = f"holm_at_look(pvalues={list(pvalues)!r}): {bad[0]!r} is not a p-value in [0, 1]"
        raise ValueError(msg)
    crossed = [False] * len(values)
    order = sorted(range(len(values)), key=values.__getitem__)
    for rank, index in enumerate(order):
        if values[index] > threshold / (len(values) - rank):
            break
        crossed[index] = True
    return crossed
