"""Rank tests: Mann-Whitney U (independent replicates) and Wilcoxon signed-rank (paired)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from .._engine.errors import HypothesisError
from ._builtin import built_in
from ._common import (
    MAX_RESAMPLES,
    TestResult,
    check_alternative,
    cliffs_delta,
    degenerate_result,
    finish,
    samples,
    too_few_result,
)
from ._order import median_of, pairwise_differences, walsh_averages
from ._resampling import permute


def _order_interval(
    select: Callable[[Sequence[int]], list[float]], se_count: float, count: int
) -> tuple[tuple[float, float, float], ...]:
    """Distribution-free CIs from order statistics (Moses / Walsh averages) of ``count``
    values, ``select(ranks)`` giving those at 0-based ``ranks`` of their sorted list."""
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    ks = []
    for level in (0.90, 0.95, 0.99):
        k = math.floor(count / 2 - stats.norm.ppf(0.5 + level / 2) * se_count)
        ks.append(min(max(k, 0), count - 1))
    values = select([r for k in ks for r in (k, count - 1 - k)])
    return tuple(
        (level, values[2 * i], values[2 * i + 1]) for i, level in enumerate((0.90, 0.95, 0.99))
    )


class _Tested(NamedTuple):
    statistic: float
    pvalue: float


def _has_ties(values: Any) -> bool:
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    return len(np.unique(values)) < len(values)


@built_in
def mann_whitney(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """Mann-Whitney U (independent replicates); exact or permutation p-values at small n and
    with ties. The difference is the Hodges-Lehmann estimate, the effect Cliff's delta."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    test = "Mann-Whitney U"
    check_alternative(alternative, test)
    b, t = samples(baseline, treatment, test)
    degenerate = degenerate_result(b, t, False, alternative, test, alpha)
    if degenerate is not None:
        return degenerate
    small = len(b) * len(t) <= 400
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if small and _has_ties(np.concatenate([b, t])):
            # A vectorised permutation test of U on the pooled mid-ranks: exact in law with
            # ties, where scipy's exact method does not apply and its own permutation method
            # is a hundred times slower.
            ranks = stats.rankdata(np.concatenate([t, b]))
            offset = len(t) * (len(t) + 1) / 2
            res = permute(
                lambda x, y, axis: np.sum(x, axis=axis) - offset,
                (ranks[: len(t)], ranks[len(t) :]),
                paired=False,
                alternative=alternative,
                n_resamples=MAX_RESAMPLES,
            )
        else:
            method = "exact" if small else "asymptotic"
            res = stats.mannwhitneyu(t, b, alternative=alternative, method=method)

    def pairwise(ranks: Sequence[int]) -> list[float]:  # of the n1 * n2 values t_i - b_j
        return pairwise_differences(t, b, ranks)

    n1, n2 = len(b), len(t)
    intervals = _order_interval(pairwise, math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12), n1 * n2)
    return finish(
        test,
        b,
        t,
        statistic=res.statistic,
        pvalue=res.pvalue,
        alternative=alternative,
        alpha=alpha,
        paired=False,
        difference=median_of(pairwise, n1 * n2),
        intervals=intervals,
        effect=(cliffs_delta(b, t), "cliffs_delta"),
        caught=caught,
    )


@built_in
def wilcoxon(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """Wilcoxon signed-rank test on paired differences; exact, or permutation with ties/zeros.
    The difference is the Hodges-Lehmann estimate (median Walsh average)."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    test = "Wilcoxon signed-rank"
    check_alternative(alternative, test)
    b, t = samples(baseline, treatment, test)
    if len(b) != len(t):
        msg = f"{test}: paired samples need equal n, got {len(b)} vs {len(t)}"
        raise HypothesisError(msg)
    degenerate = degenerate_result(b, t, True, alternative, test, alpha)
    if degenerate is not None:
        return degenerate
    d = t - b
    nonzero_count = int((d != 0).sum())
    if nonzero_count < 2:  # zeros are dropped: one sign flip of one rank is no test
        return too_few_result(
            b,
            t,
            True,
            alternative,
            test,
            alpha,
            f"too few non-zero paired differences: {nonzero_count} of {len(d)}; the "
            f"signed-rank test drops zero differences and needs at least 2 non-zero ones",
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if len(d) <= 50 and (_has_ties(np.abs(d)) or (d == 0).any()):
            # Ties or zeros: a vectorised sign-flip permutation test of W+ on the signed
            # mid-ranks of the non-zero differences (zeros dropped, as zero_method='wilcox').
            nonzero = d[d != 0]
            signed = np.sign(nonzero) * stats.rankdata(np.abs(nonzero))
            res = permute(
                lambda x, axis: np.sum(np.where(x > 0, x, 0), axis=axis),
                (signed,),
                paired=True,
                alternative=alternative,
                n_resamples=MAX_RESAMPLES,
            )
            if alternative == "two-sided":  # scipy's convention: min(W+, W-)
                total = float(np.abs(signed).sum())
                res = _Tested(min(float(res.statistic), total - float(res.statistic)), res.pvalue)
        else:
            res = stats.wilcoxon(d, alternative=alternative, method="auto")

    def walsh(ranks: Sequence[int]) -> list[float]:  # of the n (n + 1) / 2 Walsh averages
        return walsh_averages(d, ranks)

    n = len(d)
    count = n * (n + 1) // 2
    intervals = _order_interval(walsh, math.sqrt(n * (n + 1) * (2 * n + 1) / 24), count)
    return finish(
        test,
        b,
        t,
        statistic=res.statistic,
        pvalue=res.pvalue,
        alternative=alternative,
        alpha=alpha,
        paired=True,
        difference=median_of(walsh, count),
        intervals=intervals,
        effect=(cliffs_delta(b, t), "cliffs_delta"),
        caught=caught,
    )
