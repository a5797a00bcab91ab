"""``auto``: the test the data call for (paired or Welch; exact or permutation when small)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ._builtin import built_in
from ._common import TestResult, pairs_by_seed, samples
from ._parametric import t_test
from ._resampling import permutation_test

TIED_PERMUTATION_MAX = 50  # replicates per condition: above, ties take the t-test


@built_in
def auto(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """Paired when the replicates pair by seed, Welch otherwise; an exact or permutation
    test below 10 replicates, or up to 50 when over a quarter of the values are ties (with
    more, the t-test's normal approximation holds whatever the ties, and a permutation test
    of thousands of replicates would cost seconds)."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    b, t = samples(baseline, treatment, "auto")
    paired = pairs_by_seed(baseline, treatment) and len(b) == len(t)
    values = (t - b) if paired else np.concatenate([b, t])
    tied = len(values) and (len(values) - len(np.unique(values))) / len(values) > 0.25
    impl: TestResult
    if len(b) < 10 or (tied and max(len(b), len(t)) <= TIED_PERMUTATION_MAX):
        impl = permutation_test.fn(baseline, treatment, alpha, alternative, paired=paired)
    else:
        impl = t_test(baseline, treatment, paired=paired, alpha=alpha, alternative=alternative)
    return replace(impl, test=f"auto: {impl.test}")
