"""The t-tests: Welch's (independent replicates) and the paired t-test."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .._engine.errors import HypothesisError
from ._builtin import built_in
from ._common import (
    TestResult,
    check_alternative,
    degenerate_result,
    effect_size_of,
    finish,
    samples,
    t_intervals,
    t_parts,
    t_pvalue,
)


def t_test(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    *,
    paired: bool,
    alpha: float,
    alternative: str,
) -> TestResult:
    """The paired or the Welch t-test of treatment minus baseline means: the statistic and
    p-value of scipy's ``ttest_rel`` / ``ttest_ind(equal_var=False)``."""
    test = "paired t-test" if paired else "Welch t-test"
    check_alternative(alternative, test)
    b, t = samples(baseline, treatment, test)
    if paired and len(b) != len(t):
        msg = f"{test}: paired samples need equal n, got {len(b)} vs {len(t)}"
        raise HypothesisError(msg)
    degenerate = degenerate_result(b, t, paired, alternative, test, alpha)
    if degenerate is not None:
        return degenerate
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diff, se, df = t_parts(b, t, paired)
        statistic = diff / se
        res = TTest(statistic, t_pvalue(statistic, df, alternative))
    return mean_difference(test, b, t, res, alternative, alpha, paired, caught)


class TTest(NamedTuple):
    statistic: float
    pvalue: float


def mean_difference(
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


@built_in
def welch_t_test(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """Welch's t-test (unequal variances) of treatment minus baseline means."""
    return t_test(baseline, treatment, paired=False, alpha=alpha, alternative=alternative)


@built_in
def paired_t_test(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """The paired t-test on per-replicate differences (replicates share seeds)."""
    return t_test(baseline, treatment, paired=True, alpha=alpha, alternative=alternative)
