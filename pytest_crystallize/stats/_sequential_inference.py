"""Inference after a group-sequential design stopped: stage-wise p-values and intervals.

The stage-wise ordering ranks the outcome ``(k, z)`` (stopped at look ``k`` with statistic
``z``) above ``(k', z')`` when it stopped upward at an earlier look, or at the same look with
a larger ``z``. Its upper-tail probability at drift ``eta``::

    P_eta(stop upward before look k) + P_eta(reach look k, Z_k >= z)

increases with ``eta``; the p-value is twice it at ``eta = 0`` (with ``|z|``) and the interval
inverts it. At a look where the design did not cross (the last look, or an interim futility
stop) the same formula applies: the ordinary continuation.

The probability comes from the recursive numerical integration of Armitage, McPherson and
Rowe (1969), in the form of Jennison and Turnbull (2000, chapter 19): the sub-density of
``Z_k`` on the looks' continuation regions is carried from look to look on a grid
concentrated around its mean, with Simpson's rule. It is exact to about 1e-8 and takes a
fraction of a millisecond, where the quasi-Monte Carlo ``multivariate_normal.cdf`` behind the
bounds (``box``) is good to about 1e-5 and takes milliseconds per look: an interval inverts
the probability twenty to thirty times, on the session's owner, before the verdict appears.

Units: ``eta`` is the effect in standard errors of the final look's estimate. If the look
that stopped had standard error ``se_k`` at information fraction ``t_k``, the final look's
would be ``se_K = se_k * sqrt(t_k)``, and the effect is ``Delta = eta * se_K``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from ._sequential_bounds import (
    XTOL,
    check_alpha,
    check_bounds,
    check_fractions,
    z_quantile,
)

GRID = 32  # Jennison and Turnbull's r: about 12 r points per look; error about 1e-8


def _design(
    bounds: Any, fractions: Any, look: Any, z: Any, function: str
) -> tuple[tuple[float, ...], tuple[float, ...], int, float]:
    """The validated design and outcome, or a ``ValueError`` echoing the bad argument."""
    values = check_fractions(fractions, function)
    limits = check_bounds(bounds, function, len(values))
    if (
        isinstance(look, bool)
        or not isinstance(look, numbers.Integral)
        or not 1 <= int(look) <= len(values)
    ):
        msg = f"{function}(look={look!r}): look is 1-based and must be 1..{len(values)}"
        raise ValueError(msg + " (the look the design stopped at)")
    ok = isinstance(z, numbers.Real) and not isinstance(z, bool) and math.isfinite(z)
    if not ok:
        msg = f"{function}(z={z!r}): z must be the finite z statistic observed at the look"
        raise ValueError(msg)
    return limits, values, int(look), float(z)


def upward(
    bounds: Sequence[float], fractions: Sequence[float], look: int, z: float, eta: float
) -> float:
    """``P_eta((K, Z) at or above (look, z))`` in the stage-wise ordering (see the module):
    the chance of crossing ``c_j`` upward at a look ``j < look`` plus that of reaching
    ``look`` (``|Z_j| < c_j`` before it) with ``Z_look >= z``."""
    from scipy.special import ndtr  # lazy: scipy takes seconds to import

    root = [math.sqrt(t) for t in fractions[:look]]
    if look == 1:
        return float(ndtr(eta * root[0] - z))
    total = float(ndtr(eta * root[0] - bounds[0])) if math.isfinite(bounds[0]) else 0.0
    points, weights = _grid(eta * root[0], bounds[0])
    density = weights * _phi(points - eta * root[0])  # Z_1 on |Z_1| < c_1, weighted
    for k in range(1, look):
        step = fractions[k] - fractions[k - 1]
        sd = math.sqrt(step)
        # Given Z_{k-1} = u, Z_k sqrt(t_k) = u sqrt(t_{k-1}) + N(eta step, step).
        centre = points * root[k - 1] + eta * step
        edge = z if k == look - 1 else bounds[k]
        if math.isfinite(edge):
            total += float(density @ ndtr((centre - edge * root[k]) / sd))
        if k == look - 1:
            break
        points, weights = _grid(eta * root[k], bounds[k])
        spread = (points[:, None] * root[k] - centre[None, :]) / sd
        density = weights * ((_phi(spread) * (root[k] / sd)) @ density)
    return min(1.0, max(0.0, total))


def _phi(x: Any) -> Any:
    """The standard normal density, elementwise."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    return np.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))


def _grid(mean: float, bound: float) -> tuple[Any, Any]:
    """Jennison and Turnbull's points for a look statistic of mean ``mean`` on its
    continuation region ``(-bound, bound)``, with Simpson's weights: dense within 3 of the
    mean, log-spaced out to ``3 + 4 ln r``, the region's ends kept, midpoints added."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    i = np.arange(1, 6 * GRID, dtype=float)
    spread = np.where(
        i < GRID,
        -3.0 - 4.0 * np.log(GRID / i),
        np.where(
            i <= 5 * GRID,
            -3.0 + 3.0 * (i - GRID) / (2 * GRID),
            3.0 + 4.0 * np.log(GRID / np.maximum(6 * GRID - i, 1.0)),
        ),
    )
    x = mean + spread
    x = x[(x > -bound) & (x < bound)]
    reach = 3.0 + 4.0 * math.log(GRID)
    ends = ([-bound] if -bound > mean - reach else [], [bound] if bound < mean + reach else [])
    x = np.concatenate((ends[0], x, ends[1]))
    points = np.empty(max(0, 2 * len(x) - 1))
    points[0::2], points[1::2] = x, (x[:-1] + x[1:]) / 2.0
    width = np.diff(x) / 6.0
    weights = np.zeros(len(points))
    weights[0:-1:2] += width
    weights[2::2] += width
    weights[1::2] += 4.0 * width
    return points, weights


def stagewise_pvalue(
    bounds: Sequence[float], fractions: Sequence[float], look: int, z: float
) -> float:
    """The two-sided p-value of stopping at ``look`` (1-based) with statistic ``z``, by the
    stage-wise ordering: crossing earlier is more extreme; at the same look, a larger ``|z|``.

    With one look it is the fixed design's ``2 (1 - Phi(|z|))``.
    """
    limits, values, k, observed = _design(bounds, fractions, look, z, "stagewise_pvalue")
    return min(1.0, 2.0 * upward(limits, values, k, abs(observed), 0.0))


def stagewise_interval(
    bounds: Sequence[float],
    fractions: Sequence[float],
    look: int,
    z: float,
    level: float = 0.95,
) -> tuple[float, float]:
    """The ``level`` confidence interval for the drift ``eta`` (``Z_j ~ N(eta sqrt(t_j), 1)``)
    after stopping at ``look`` with statistic ``z``, by inverting the stage-wise ordering.

    ``eta`` is in standard errors of the final look's estimate: the effect's interval is
    ``eta * se_k * sqrt(t_k)`` with ``se_k`` the standard error at the stopping look ``k``.
    With one look it is ``z -/+ z_{(1 + level) / 2}``.
    """
    limits, values, k, observed = _design(bounds, fractions, look, z, "stagewise_interval")
    confidence = check_alpha(level, "stagewise_interval", "level", "0.95")
    tail = (1.0 - confidence) / 2.0
    return (
        _solve(limits, values, k, observed, tail),
        _solve(limits, values, k, observed, 1.0 - tail),
    )


def _solve(
    bounds: tuple[float, ...], fractions: tuple[float, ...], look: int, z: float, target: float
) -> float:
    """The drift at which the upper-tail probability of ``(look, z)`` equals ``target``."""
    from scipy.optimize import brentq  # lazy: scipy takes seconds to import

    def excess(eta: float) -> float:
        return upward(bounds, fractions, look, z, eta) - target

    scale = 1.0 / math.sqrt(fractions[look - 1])
    # The naive bound (the estimate of eta, z * scale, less the normal quantile of target
    # times its standard error, scale) is near: bracket it closely, widen while it misses.
    naive = (z - z_quantile(1.0 - target)) * scale
    step = 0.5 * scale
    low, high = naive - step, naive + step
    while excess(low) > 0.0:
        low, step = low - step, 2.0 * step
    while excess(high) < 0.0:
        high, step = high + step, 2.0 * step
    return float(brentq(excess, low, high, xtol=XTOL))
