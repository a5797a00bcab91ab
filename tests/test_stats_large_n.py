"""Above 50 replicates a condition, the permutation tests of means and medians permute by
``_large_permutation``, in linear time: its relabelling is uniform, its p-values agree with
scipy's permutation test within Monte Carlo error, and under a true null it rejects at most
at alpha."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats as ss

from pytest_crystallize import stats
from pytest_crystallize._engine.hypotheses import Samples
from pytest_crystallize.stats._common import BOOTSTRAP_RESAMPLES, MAX_RESAMPLES, RESAMPLING_SEED
from pytest_crystallize.stats._large_permutation import _relabelled, large_permutation


def as_samples(values: Any, first_seed: int = 0) -> Samples:
    samples = Samples({"m": [float(v) for v in values]})
    samples.seeds = tuple(range(first_seed, first_seed + len(values)))
    return samples


def test_the_relabelling_draws_every_subset_of_its_size_equally_often() -> None:
    # Pooled values 2^i: a resample's sum names its subset. 7 values, 3 in the first sample:
    # 35 subsets, each expected 20,000 / 35 times; chi-square against uniform.
    pooled = 2.0 ** np.arange(7)
    n_x, draws = 3, 20_000
    rng = np.random.default_rng(11)
    null = _relabelled(pooled[:n_x], pooled[n_x:], draws, rng, "mean")
    total = pooled.sum()
    # null = S/3 - (total - S)/4  =>  S = (null + total/4) * 12/7
    sums = np.rint((null + total / 4) * 12 / 7).astype(int)
    expected = {sum(2**i for i in c) for c in itertools.combinations(range(7), n_x)}
    assert set(sums) == expected
    counts = np.array([np.sum(sums == s) for s in sorted(expected)])
    assert ss.chisquare(counts).pvalue > 0.001


@pytest.mark.parametrize("center", ["mean", "median"])
@pytest.mark.parametrize("paired", [True, False], ids=["paired", "independent"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_p_values_agree_with_scipys_permutation_test_within_monte_carlo_error(
    center: str, paired: bool, alternative: str
) -> None:
    rng = np.random.default_rng(7)
    middle = getattr(np, center)
    for shift in (0.0, 0.15, 0.3):
        x, y = rng.normal(shift, 1, 80), rng.normal(0, 1, 70 if not paired else 80)
        if center == "median":
            x, y = np.round(x, 1), np.round(y, 1)  # ties, and medians of two middle values
        data: tuple[Any, ...] = (x - y,) if paired else (x, y)
        ours = large_permutation(
            data, center=center, paired=paired, alternative=alternative, n_resamples=4999, seed=1
        )
        theirs = ss.permutation_test(
            data,
            (lambda a, axis: middle(a, axis=axis))
            if paired
            else (lambda a, b, axis: middle(a, axis=axis) - middle(b, axis=axis)),
            permutation_type="samples" if paired else "independent",
            vectorized=True,
            n_resamples=4999,
            alternative=alternative,
            rng=np.random.default_rng(2),
        )
        assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
        p = max(theirs.pvalue, 1 / 5000)
        tolerance = 5 * math.sqrt(2 * p * (1 - p) / 5000) + 2 / 5000  # two independent draws
        assert abs(ours.pvalue - theirs.pvalue) <= tolerance, (shift, ours, theirs.pvalue)


@pytest.mark.parametrize("center", ["mean", "median"])
@pytest.mark.parametrize("paired", [True, False], ids=["paired", "independent"])
def test_under_a_true_null_the_permutation_rejects_at_most_at_alpha(
    center: str, paired: bool
) -> None:
    # 300 experiments of about 60 heavy-tailed replicates a condition, no effect, each with
    # its own resamples: with 199 of them, p <= 0.05 has probability exactly 0.05 for a
    # continuous statistic (the mean's rate is within the binomial 99% bounds); a median's
    # null distribution has ties, counted as extreme, so it may only reject less often.
    rng = np.random.default_rng(2024)
    trials, rejected = 300, 0
    for _ in range(trials):
        x, y = rng.standard_t(3, 61), rng.standard_t(3, 61 if paired else 58)
        result = large_permutation(
            (x - y,) if paired else (x, y),
            center=center,
            paired=paired,
            alternative="greater",
            n_resamples=199,
            seed=int(rng.integers(2**31)),
        )
        rejected += result.pvalue <= 0.05
    low, high = ss.binom.ppf([0.005, 0.995], trials, 0.05)
    assert rejected <= high, rejected
    if center == "mean":
        assert low <= rejected, rejected


def test_above_fifty_replicates_the_verifiers_use_the_linear_permutation() -> None:
    rng = np.random.default_rng(3)
    b, t = rng.normal(0, 1, 51), rng.normal(0.5, 1, 51)
    for verifier, resamples in (
        (stats.permutation_test(paired=True), MAX_RESAMPLES),
        (stats.bootstrap_ci(paired=True), BOOTSTRAP_RESAMPLES),  # its decision
    ):
        result = verifier(as_samples(b), as_samples(t))
        direct = large_permutation(
            (t - b,),
            center="mean",
            paired=True,
            alternative="two-sided",
            n_resamples=resamples,
            seed=RESAMPLING_SEED,
        )
        assert result.pvalue == direct.pvalue
        assert result.difference == direct.statistic
    median = stats.bootstrap_ci(statistic="median", paired=True)(as_samples(b), as_samples(t))
    direct = large_permutation(
        (t - b,),
        center="median",
        paired=True,
        alternative="two-sided",
        n_resamples=BOOTSTRAP_RESAMPLES,
        seed=RESAMPLING_SEED,
    )
    assert (median.pvalue, median.difference) == (direct.pvalue, direct.statistic)
