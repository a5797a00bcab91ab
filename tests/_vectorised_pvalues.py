"""The built-in verifiers' p-values, vectorised over rows of simulated experiments (for
tests/test_sequential_verifiers.py, which checks them against the verifiers themselves).

Each function takes the baseline and treatment rows (rows x replicates) and returns
``{side: p-value per row}``: ``"two-sided"`` and ``"greater"`` for the tests with an
``alternative``, ``"gate"`` for the gates (one-sided against their margin). The methods are
the ones the library picks on tie-free data: Mann-Whitney exact while ``n_b * n_t <= 400``,
else asymptotic; Wilcoxon exact (up to 50 pairs); the permutation test and the bootstrap's
decision: scipy's seeded permutation test, whose permutations are the same at every call of
equal size, so they are recorded once and applied to every row by a matrix product.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats as ss

from pytest_crystallize.stats._resampling import seeded_rng

Pvalues = Callable[[Any, Any], dict[str, Any]]  # (baseline, treatment) -> {side: p per row}


@functools.lru_cache(maxsize=32)
def permutations(n: int, paired: bool, resamples: int) -> tuple[Any, bool]:
    """The permutations the library's seeded permutation test draws at ``n`` replicates (the
    same at every call): sign flips (resamples x n), or which of the pooled ``[t, b]``
    positions form the first sample (resamples x 2n, 0/1); and whether the test is exact."""
    seen: list[Any] = []

    def record(*samples: Any, axis: int) -> Any:
        if samples[0].ndim > 1:
            seen.append(np.array(samples[0]))
        return np.mean(samples[0], axis=axis)

    options = {"vectorized": True, "n_resamples": resamples, **seeded_rng()}
    if paired:
        labels = np.arange(1.0, n + 1)
        ss.permutation_test((labels,), record, permutation_type="samples", **options)
        drawn = np.concatenate(seen)
        assert (np.abs(drawn) == labels).all()
        return np.sign(drawn), 2**n <= resamples
    ss.permutation_test((np.arange(0.0, n), np.arange(n, 2.0 * n)), record, **options)
    taken = np.concatenate(seen).astype(int)
    member = np.zeros((len(taken), 2 * n))
    np.put_along_axis(member, taken, 1.0, axis=1)
    return member, math.comb(2 * n, n) <= resamples


def permutation_pvalues(b: Any, t: Any, *, paired: bool, resamples: int) -> dict[str, Any]:
    """scipy's two-sided and one-sided permutation p-values of the difference of means, from
    the permutations the library draws (``permute``: the same at every call)."""
    n = b.shape[1]
    drawn, exact = permutations(n, paired, resamples)
    adjust, count = (0, len(drawn)) if exact else (1, len(drawn) + 1)
    two, high = np.empty(len(b)), np.empty(len(b))
    for lo in range(0, len(b), 1000):  # rows x resamples at a time: 40 MB
        rows = slice(lo, lo + 1000)
        if paired:  # the mean of the sign-flipped differences
            d = t[rows] - b[rows]
            observed, null = d.mean(axis=1), d @ drawn.T
        else:  # (sum of the first sample - sum of the second) = 2 * first - total
            pooled = np.concatenate([t[rows], b[rows]], axis=1)
            observed, null = t[rows].mean(axis=1) - b[rows].mean(axis=1), pooled @ drawn.T
            null *= 2
            null -= pooled.sum(axis=1)[:, None]
        null /= n
        gamma = np.abs(100 * np.finfo(float).eps * observed)[:, None]  # scipy's tolerance
        high[rows] = (np.count_nonzero(null >= observed[:, None] - gamma, axis=1) + adjust) / count
        low = (np.count_nonzero(null <= observed[:, None] + gamma, axis=1) + adjust) / count
        two[rows] = np.clip(2 * np.minimum(low, high[rows]), 0, 1)
    return {"two-sided": two, "greater": high}


def each_side(test: Callable[..., Any]) -> Pvalues:
    """``test(b, t, alternative)`` two-sided and one-sided (greater)."""

    def pvalues(b: Any, t: Any) -> dict[str, Any]:
        return {side: test(b, t, side) for side in ("two-sided", "greater")}

    return pvalues


def t_test(b: Any, t: Any, side: str, *, paired: bool, shift: float = 0.0) -> Any:
    """The paired or Welch t-test of the treatment (plus ``shift``) minus the baseline."""
    if paired:
        return ss.ttest_rel(t + shift, b, axis=1, alternative=side).pvalue
    return ss.ttest_ind(t + shift, b, equal_var=False, axis=1, alternative=side).pvalue


def mann_whitney(b: Any, t: Any, side: str) -> Any:
    method = "exact" if b.shape[1] * t.shape[1] <= 400 else "asymptotic"
    return ss.mannwhitneyu(t, b, axis=1, alternative=side, method=method).pvalue


def wilcoxon(b: Any, t: Any, side: str) -> Any:
    return ss.wilcoxon(t - b, axis=1, alternative=side, method="exact").pvalue


def resampled(paired: bool, resamples: int) -> Pvalues:
    def pvalues(b: Any, t: Any) -> dict[str, Any]:
        return permutation_pvalues(b, t, paired=paired, resamples=resamples)

    return pvalues


def non_inferior(paired: bool, margin: float, higher_is_better: bool = True) -> Pvalues:
    """One-sided t-test that the change (in the better direction) is above -margin."""

    def pvalues(b: Any, t: Any) -> dict[str, Any]:
        if higher_is_better:
            return {"gate": t_test(b, t, "greater", paired=paired, shift=margin)}
        return {"gate": t_test(t, b, "greater", paired=paired, shift=margin)}

    return pvalues


def equivalent(paired: bool, margin: float) -> Pvalues:
    """TOST: the larger of the one-sided p-values against -margin and +margin."""

    def pvalues(b: Any, t: Any) -> dict[str, Any]:
        above = t_test(b, t, "greater", paired=paired, shift=margin)
        return {"gate": np.maximum(above, t_test(b, t, "less", paired=paired, shift=-margin))}

    return pvalues


WELCH = each_side(functools.partial(t_test, paired=False))
PAIRED_T = each_side(functools.partial(t_test, paired=True))
MANN_WHITNEY, WILCOXON = each_side(mann_whitney), each_side(wilcoxon)
