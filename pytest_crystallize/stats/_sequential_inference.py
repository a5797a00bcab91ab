"""Inference after a group-sequential design stopped: stage-wise p-values and intervals.

The stage-wise ordering ranks the outcome ``(k, z)`` (stopped at look ``k`` with statistic
``z``) above ``(k', z')`` when it stopped upward at an earlier look, or at the same look with
a larger ``z``. Its upper-tail probability at drift ``eta``::

    P_eta(stop upward before look k) + P_eta(reach look k, Z_k >= z)

increases with ``eta``; the p-value is twice it at ``eta = 0`` (with ``|z|``) and the interval
inverts it. At a look where the design did not cross (the last look, or an interim futility
stop) the same formula applies: the ordinary continuation.

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
    exit_upper,
    z_quantile,
)


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
    """``P_eta((K, Z) at or above (look, z))`` in the stage-wise ordering (see the module)."""
    earlier = sum(exit_upper(bounds, fractions[:j], bounds[j - 1], eta) for j in range(1, look))
    return min(1.0, earlier + exit_upper(bounds, fractions[:look], z, eta))


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
