"""Built-in verifiers: t, rank, permutation and bootstrap tests, and non-regression gates.

Use them as ``@hypothesis(verifier=stats.paired_t_test(alternative="greater"),
metrics="total")``. Each compares one metric and returns a frozen :class:`TestResult` in
scipy's vocabulary (``statistic``, ``pvalue``, ``alternative``, ``confidence_interval()``)
with the estimated difference (treatment minus baseline), an effect size, the smallest
difference the test could detect with 80% power (``mde``) and an ``outcome``: ``"passed"``,
``"failed"`` or ``"inconclusive"``. Degenerate data get a named ``reason`` instead of an
infinite or NaN p-value. ``as_dict()`` has the ``p_value`` and ``significant`` keys that
tutorial-style rankers read. scipy is imported when a test runs, never at import.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .._engine.errors import CrystallizeUsageError, HypothesisError
from .._engine.hypotheses import verifier
from ._common import (
    BOOTSTRAP_RESAMPLES,
    MAX_RESAMPLES,
    RESAMPLING_SEED,
    ConfidenceInterval,
    TestResult,
    check_alternative,
    cliffs_delta,
    degenerate_result,
    effect_size_of,
    finish,
    pairing,
    pairs_by_seed,
    samples,
    t_intervals,
    t_parts,
)
from ._gates import equivalent, non_inferior
from ._power import PlanResult, min_pvalue, plan, replicates_needed

# --- t-tests ------------------------------------------------------------------------------


def _t_test(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    *,
    paired: bool,
    alpha: float,
    alternative: str,
) -> TestResult:
    from scipy import stats

    test = "paired t-test" if paired else "Welch t-test"
    check_alternative(alternative, test)
    b, t = samples(baseline, treatment, test)
    if paired and len(b) != len(t):
        msg = f"{test}: paired samples need equal n, got {len(b)} vs {len(t)}"
        raise HypothesisError(msg)
    degenerate = degenerate_result(b, t, paired, alternative, test, alpha)
    if degenerate is not None:
        return degenerate  # type: ignore[no-any-return]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if paired:
            res = stats.ttest_rel(t, b, alternative=alternative)
        else:
            res = stats.ttest_ind(t, b, equal_var=False, alternative=alternative)
    return _mean_difference(test, b, t, res, alternative, alpha, paired, caught)


def _mean_difference(
    test: str,
    b: Any,
    t: Any,
    res: Any,
    alternative: str,
    alpha: float,
    paired: bool,
    caught: Sequence[Any],
) -> TestResult:
    """A result whose estimate is the difference of means, with its t-based intervals."""
    diff, se, df = t_parts(b, t, paired)
    return finish(
        test,
        b,
        t,
        statistic=res.statistic,
        pvalue=res.pvalue,
        alternative=alternative,
        alpha=alpha,
        paired=paired,
        difference=diff,
        intervals=t_intervals(diff, se, df),
        effect=effect_size_of(b, t, paired),
        caught=caught,
    )


@verifier
def welch_t_test(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """Welch's t-test (unequal variances) of treatment minus baseline means."""
    return _t_test(baseline, treatment, paired=False, alpha=alpha, alternative=alternative)


@verifier
def paired_t_test(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """The paired t-test on per-replicate differences (replicates share seeds)."""
    return _t_test(baseline, treatment, paired=True, alpha=alpha, alternative=alternative)


# --- rank tests ---------------------------------------------------------------------------


def _rng(seed: int) -> dict[str, Any]:
    """The seeded generator keyword scipy takes (``rng`` since 1.15, ``random_state`` before)."""
    import inspect

    import numpy as np
    from scipy import stats

    name = (
        "rng" if "rng" in inspect.signature(stats.permutation_test).parameters else "random_state"
    )
    return {name: np.random.default_rng(seed)}


def _order_interval(
    values: Any, se_count: float, count: int
) -> tuple[tuple[float, float, float], ...]:
    """Distribution-free CIs from order statistics (Moses / Walsh averages)."""
    from scipy import stats

    ordered = sorted(values)
    out = []
    for level in (0.90, 0.95, 0.99):
        k = math.floor(count / 2 - stats.norm.ppf(0.5 + level / 2) * se_count)
        k = min(max(k, 0), len(ordered) - 1)
        out.append((level, float(ordered[k]), float(ordered[len(ordered) - 1 - k])))
    return tuple(out)


class _Tested(NamedTuple):
    statistic: float
    pvalue: float


def _has_ties(values: Any) -> bool:
    import numpy as np

    return len(np.unique(values)) < len(values)


@verifier
def mann_whitney(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """Mann-Whitney U (independent replicates); exact or permutation p-values at small n and
    with ties. The difference is the Hodges-Lehmann estimate, the effect Cliff's delta."""
    import numpy as np
    from scipy import stats

    test = "Mann-Whitney U"
    check_alternative(alternative, test)
    b, t = samples(baseline, treatment, test)
    degenerate = degenerate_result(b, t, False, alternative, test, alpha)
    if degenerate is not None:
        return degenerate  # type: ignore[no-any-return]
    small = len(b) * len(t) <= 400
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if small and _has_ties(np.concatenate([b, t])):
            # A vectorised permutation test of U on the pooled mid-ranks: exact in law with
            # ties, where scipy's exact method does not apply and its own permutation method
            # is a hundred times slower.
            ranks = stats.rankdata(np.concatenate([t, b]))
            offset = len(t) * (len(t) + 1) / 2
            res = stats.permutation_test(
                (ranks[: len(t)], ranks[len(t) :]),
                lambda x, y, axis: np.sum(x, axis=axis) - offset,
                permutation_type="independent",
                vectorized=True,
                n_resamples=MAX_RESAMPLES,
                alternative=alternative,
                **_rng(RESAMPLING_SEED),
            )
        else:
            method = "exact" if small else "asymptotic"
            res = stats.mannwhitneyu(t, b, alternative=alternative, method=method)
    pairwise = np.subtract.outer(t, b).ravel()
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
        difference=float(np.median(pairwise)),
        intervals=intervals,
        effect=(cliffs_delta(b, t), "cliffs_delta"),
        caught=caught,
    )


@verifier
def wilcoxon(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """Wilcoxon signed-rank test on paired differences; exact, or permutation with ties/zeros.
    The difference is the Hodges-Lehmann estimate (median Walsh average)."""
    import numpy as np
    from scipy import stats

    test = "Wilcoxon signed-rank"
    check_alternative(alternative, test)
    b, t = samples(baseline, treatment, test)
    if len(b) != len(t):
        msg = f"{test}: paired samples need equal n, got {len(b)} vs {len(t)}"
        raise HypothesisError(msg)
    degenerate = degenerate_result(b, t, True, alternative, test, alpha)
    if degenerate is not None:
        return degenerate  # type: ignore[no-any-return]
    d = t - b
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if len(d) <= 50 and (_has_ties(np.abs(d)) or (d == 0).any()):
            # Ties or zeros: a vectorised sign-flip permutation test of W+ on the signed
            # mid-ranks of the non-zero differences (zeros dropped, as zero_method='wilcox').
            nonzero = d[d != 0]
            signed = np.sign(nonzero) * stats.rankdata(np.abs(nonzero))
            res = stats.permutation_test(
                (signed,),
                lambda x, axis: np.sum(np.where(x > 0, x, 0), axis=axis),
                permutation_type="samples",
                vectorized=True,
                n_resamples=MAX_RESAMPLES,
                alternative=alternative,
                **_rng(RESAMPLING_SEED),
            )
            if alternative == "two-sided":  # scipy's convention: min(W+, W-)
                total = float(np.abs(signed).sum())
                res = _Tested(min(float(res.statistic), total - float(res.statistic)), res.pvalue)
        else:
            res = stats.wilcoxon(d, alternative=alternative, method="auto")
    n = len(d)
    walsh = (np.add.outer(d, d) / 2)[np.triu_indices(n)]
    intervals = _order_interval(walsh, math.sqrt(n * (n + 1) * (2 * n + 1) / 24), len(walsh))
    return finish(
        test,
        b,
        t,
        statistic=res.statistic,
        pvalue=res.pvalue,
        alternative=alternative,
        alpha=alpha,
        paired=True,
        difference=float(np.median(walsh)),
        intervals=intervals,
        effect=(cliffs_delta(b, t), "cliffs_delta"),
        caught=caught,
    )


# --- resampling ---------------------------------------------------------------------------


@verifier
def permutation_test(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
    paired: bool | None = None,
    n_resamples: int = MAX_RESAMPLES,
) -> TestResult:
    """Permutation test of the difference of means: sign flips of paired differences (when
    replicates pair by seed, or ``paired=True``) or relabelling of independent samples.
    Exact when the permutations are fewer than ``n_resamples``, else seeded Monte Carlo."""
    import numpy as np
    from scipy import stats

    test = "permutation test"
    check_alternative(alternative, test)
    is_paired = pairing(paired, baseline, treatment)
    b, t = samples(baseline, treatment, test)
    degenerate = degenerate_result(b, t, is_paired, alternative, test, alpha)
    if degenerate is not None:
        return degenerate  # type: ignore[no-any-return]
    resamples = min(int(n_resamples), MAX_RESAMPLES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if is_paired:
            res = stats.permutation_test(
                (t - b,),
                lambda x, axis: np.mean(x, axis=axis),
                permutation_type="samples",
                vectorized=True,
                n_resamples=resamples,
                alternative=alternative,
                **_rng(RESAMPLING_SEED),
            )
        else:
            res = stats.permutation_test(
                (t, b),
                lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                permutation_type="independent",
                vectorized=True,
                n_resamples=resamples,
                alternative=alternative,
                **_rng(RESAMPLING_SEED),
            )
    name = f"{'paired' if is_paired else 'independent'} {test}"
    return _mean_difference(name, b, t, res, alternative, alpha, is_paired, caught)


@verifier
def bootstrap_ci(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
    statistic: str = "mean",
    paired: bool | None = None,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
) -> TestResult:
    """Percentile bootstrap CI of the difference of means or medians (seeded).

    The decision and the p-value come from a permutation test of the same statistic (sign
    flips when paired): percentile bootstrap intervals under-cover at small n (at n=12 a
    95% interval excludes a true zero about 7-9% of the time), permutation tests do not.
    """
    import numpy as np
    from scipy import stats

    test = f"bootstrap ({statistic})"
    check_alternative(alternative, test)
    if statistic not in ("mean", "median"):
        msg = f"bootstrap_ci(statistic=...) takes 'mean' or 'median', got {statistic!r}"
        raise CrystallizeUsageError(msg)
    center = np.mean if statistic == "mean" else np.median
    is_paired = pairing(paired, baseline, treatment)
    b, t = samples(baseline, treatment, test)
    degenerate = degenerate_result(b, t, is_paired, alternative, test, alpha)
    if degenerate is not None:
        return degenerate  # type: ignore[no-any-return]
    resamples = min(int(n_resamples), MAX_RESAMPLES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if is_paired:
            data: tuple[Any, ...] = (t - b,)

            def estimate(x: Any, axis: int) -> Any:
                return center(x, axis=axis)
        else:
            data = (t, b)

            def estimate(x: Any, y: Any, axis: int) -> Any:  # type: ignore[misc]
                return center(x, axis=axis) - center(y, axis=axis)

        res = stats.bootstrap(
            data,
            estimate,
            n_resamples=resamples,
            vectorized=True,
            paired=False,
            method="percentile",
            **_rng(RESAMPLING_SEED),
        )
        decision = stats.permutation_test(
            data,
            estimate,
            permutation_type="samples" if is_paired else "independent",
            vectorized=True,
            n_resamples=resamples,
            alternative=alternative,
            **_rng(RESAMPLING_SEED),
        )
    dist = np.asarray(res.bootstrap_distribution)
    pvalue = float(decision.pvalue)
    intervals = tuple(
        (
            level,
            float(np.quantile(dist, 0.5 - level / 2)),
            float(np.quantile(dist, 0.5 + level / 2)),
        )
        for level in (0.90, 0.95, 0.99)
    )
    point = float(center(t - b)) if is_paired else float(center(t) - center(b))
    return finish(
        test,
        b,
        t,
        statistic=point,
        pvalue=float(pvalue),
        alternative=alternative,
        alpha=alpha,
        paired=is_paired,
        difference=point,
        intervals=intervals,
        effect=effect_size_of(b, t, is_paired),
        caught=caught,
    )


@verifier
def auto(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """Paired when the replicates pair by seed, Welch otherwise; an exact or permutation
    test below 10 replicates or when over a quarter of the values are ties."""
    import numpy as np

    b, t = samples(baseline, treatment, "auto")
    paired = pairs_by_seed(baseline, treatment) and len(b) == len(t)
    values = (t - b) if paired else np.concatenate([b, t])
    tied = len(values) and (len(values) - len(np.unique(values))) / len(values) > 0.25
    if len(b) < 10 or tied:
        impl = permutation_test.fn(baseline, treatment, alpha, alternative, paired=paired)
    else:
        impl = _t_test(baseline, treatment, paired=paired, alpha=alpha, alternative=alternative)
    return _replace_test(impl, f"auto: {impl.test}")


def _replace_test(result: TestResult, name: str) -> TestResult:
    from dataclasses import replace

    return replace(result, test=name)


def _check_params(params: Mapping[str, Any], name: str) -> None:
    """Refuse bad arguments of a built-in verifier when it is made."""
    check_alternative(params.get("alternative", "two-sided"), name)
    alpha = params.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        msg = f"{name}(alpha=...) takes a number between 0 and 1, got {alpha!r}"
        raise CrystallizeUsageError(msg)
    if params.get("statistic", "mean") not in ("mean", "median"):
        msg = f"{name}(statistic=...) takes 'mean' or 'median', got {params['statistic']!r}"
        raise CrystallizeUsageError(msg)
    margin = params.get("margin", 1.0)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin > 0:
        msg = f"{name}(margin=...) takes a positive number, got {margin!r}"
        raise CrystallizeUsageError(msg)
    resamples = params.get("n_resamples", 1)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        msg = f"{name}(n_resamples=...) takes a positive int, got {resamples!r}"
        raise CrystallizeUsageError(msg)


for _factory in (
    welch_t_test,
    paired_t_test,
    mann_whitney,
    wilcoxon,
    permutation_test,
    bootstrap_ci,
    auto,
    non_inferior,
    equivalent,
):
    _factory.check = functools.partial(_check_params, name=_factory.name)
    _factory.floor = min_pvalue

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "ConfidenceInterval",
    "MAX_RESAMPLES",
    "PlanResult",
    "TestResult",
    "auto",
    "bootstrap_ci",
    "cliffs_delta",
    "equivalent",
    "mann_whitney",
    "min_pvalue",
    "non_inferior",
    "paired_t_test",
    "pairs_by_seed",
    "permutation_test",
    "plan",
    "replicates_needed",
    "welch_t_test",
    "wilcoxon",
]
