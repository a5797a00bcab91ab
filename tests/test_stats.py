"""The built-in verifiers: numbers equal to scipy's, effect sizes, degenerate data, gates,
family correction, reachability and planning (issue 5, items 1-5)."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as ss

from pytest_crystallize import (
    BASELINE_CONDITION,
    CrystallizeUsageError,
    Experiment,
    ExperimentDefinitionError,
    Hypothesis,
    HypothesisError,
    RunResult,
    data_source,
    pipeline_step,
    stats,
    treatment,
)
from pytest_crystallize import verifier as verifier_factory
from pytest_crystallize._engine.correction import adjust_pvalues
from pytest_crystallize._engine.hypotheses import Samples, evaluate
from pytest_crystallize._engine.results import ConditionMetrics
from pytest_crystallize._report.judge import judge
from pytest_crystallize.stats._order import median_of, pairwise_differences, walsh_averages

N = 12
SEEDS = tuple(range(100, 100 + N))


def paired_data(seed: int = 20240601, n: int = N, shift: float = 0.6) -> tuple[Any, Any]:
    """Baseline and treatment replicates correlated at 0.8, the treatment shifted by ``shift``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((2, n))
    baseline = 10.0 + z[0]
    treated = 10.0 + shift + 0.8 * z[0] + 0.6 * z[1]
    return baseline, treated


def independent_data(seed: int = 7, n_b: int = N, n_t: int = N) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    return rng.normal(10.0, 1.0, n_b), rng.normal(10.8, 2.0, n_t)


def as_samples(values: Any, seeds: tuple[int, ...] | None = None) -> Samples:
    """``{"m": values}`` as a verifier receives it; ``seeds`` mark how replicates pair."""
    s = Samples({"m": [None if v is None else float(v) for v in values]})
    if seeds is not None:
        s.seeds = tuple(seeds)
    return s


def paired_pair(b: Any, t: Any) -> tuple[Samples, Samples]:
    seeds = tuple(range(len(b)))
    return as_samples(b, seeds), as_samples(t, seeds)


def unpaired_pair(b: Any, t: Any) -> tuple[Samples, Samples]:
    return as_samples(b, tuple(range(len(b)))), as_samples(t, tuple(range(1000, 1000 + len(t))))


def seeded() -> dict[str, Any]:
    """The generator keyword the built-in resampling verifiers pass to scipy."""
    from pytest_crystallize.stats._resampling import seeded_rng

    return seeded_rng()


def assert_all_finite(result: Any) -> None:
    for key, value in result.as_dict().items():
        if isinstance(value, float):
            assert math.isfinite(value), f"{key}={value!r} in {result.as_dict()}"


# --- numbers equal scipy's ------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_welch_t_test_equals_scipy_ttest_ind_with_unequal_variances(alternative: str) -> None:
    b, t = independent_data(n_t=9)
    result = stats.welch_t_test(alternative=alternative)(*unpaired_pair(b, t))
    direct = ss.ttest_ind(t, b, equal_var=False, alternative=alternative)
    assert result.test == "Welch t-test"
    assert result.statistic == pytest.approx(direct.statistic, rel=1e-12)
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-9)
    assert result.alternative == alternative
    assert (result.n_baseline, result.n_treatment) == (12, 9)
    assert result.mean_baseline == pytest.approx(b.mean())
    assert result.mean_treatment == pytest.approx(t.mean())
    assert result.sd_baseline == pytest.approx(b.std(ddof=1))
    assert result.sd_treatment == pytest.approx(t.std(ddof=1))
    assert result.difference == pytest.approx(t.mean() - b.mean())
    assert result.paired is False
    two_sided = ss.ttest_ind(t, b, equal_var=False)
    for level in (0.90, 0.95, 0.99):
        assert tuple(result.confidence_interval(level)) == pytest.approx(
            tuple(two_sided.confidence_interval(level)), rel=1e-9
        )


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_paired_t_test_equals_scipy_ttest_rel(alternative: str) -> None:
    b, t = paired_data()
    result = stats.paired_t_test(alternative=alternative)(*paired_pair(b, t))
    direct = ss.ttest_rel(t, b, alternative=alternative)
    assert result.test == "paired t-test"
    assert result.statistic == pytest.approx(direct.statistic, rel=1e-12)
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-9)
    assert result.paired is True
    assert result.difference == pytest.approx((t - b).mean())
    two_sided = ss.ttest_rel(t, b)
    for level in (0.90, 0.95, 0.99):
        assert tuple(result.confidence_interval(level)) == pytest.approx(
            tuple(two_sided.confidence_interval(level)), rel=1e-9
        )


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_mann_whitney_without_ties_at_small_n_equals_scipy_exact(alternative: str) -> None:
    b, t = independent_data(n_t=10)
    result = stats.mann_whitney(alternative=alternative)(*unpaired_pair(b, t))
    direct = ss.mannwhitneyu(t, b, alternative=alternative, method="exact")
    assert result.test == "Mann-Whitney U"
    assert result.statistic == pytest.approx(direct.statistic)
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-12)
    # The difference is the Hodges-Lehmann estimate: the median of all pairwise differences.
    assert result.difference == pytest.approx(np.median(np.subtract.outer(t, b)))


def test_mann_whitney_with_ties_uses_a_seeded_permutation_p_value() -> None:
    b = np.array([3, 4, 4, 5, 5, 5, 6, 6, 7, 7, 8, 9], dtype=float)
    t = np.array([4, 5, 6, 6, 7, 7, 7, 8, 8, 9, 9, 10], dtype=float)
    result = stats.mann_whitney()(*unpaired_pair(b, t))
    method = ss.PermutationMethod(n_resamples=stats.MAX_RESAMPLES, **seeded())
    direct = ss.mannwhitneyu(t, b, method=method)
    assert result.statistic == pytest.approx(direct.statistic)
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-12)
    # scipy's method="auto" would silently use the normal approximation here.
    asymptotic = ss.mannwhitneyu(t, b, method="asymptotic").pvalue
    assert result.pvalue != pytest.approx(asymptotic, rel=1e-6)


def test_mann_whitney_at_large_n_equals_scipy_asymptotic() -> None:
    b, t = independent_data(seed=11, n_b=25, n_t=25)
    result = stats.mann_whitney()(*unpaired_pair(b, t))
    direct = ss.mannwhitneyu(t, b, method="asymptotic")
    assert result.statistic == pytest.approx(direct.statistic)
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "less"])
def test_wilcoxon_without_ties_equals_scipy_wilcoxon(alternative: str) -> None:
    b, t = paired_data()
    result = stats.wilcoxon(alternative=alternative)(*paired_pair(b, t))
    direct = ss.wilcoxon(t, b, alternative=alternative)
    assert result.test == "Wilcoxon signed-rank"
    assert result.statistic == pytest.approx(direct.statistic)
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-12)
    d = t - b
    walsh = (np.add.outer(d, d) / 2)[np.triu_indices(len(d))]
    assert result.difference == pytest.approx(np.median(walsh))
    assert result.paired is True


def test_wilcoxon_with_ties_and_zeros_uses_a_seeded_permutation_p_value() -> None:
    b = np.arange(12, dtype=float)
    t = b + np.array([1, 1, 2, 0, 1, -1, 2, 2, 1, 0, 3, 1], dtype=float)
    result = stats.wilcoxon()(*paired_pair(b, t))
    method = ss.PermutationMethod(n_resamples=stats.MAX_RESAMPLES, **seeded())
    direct = ss.wilcoxon(t - b, method=method)
    assert result.statistic == pytest.approx(direct.statistic)
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_paired_permutation_test_equals_scipy_sign_flip_permutation_test(alternative: str) -> None:
    b, t = paired_data()
    result = stats.permutation_test(alternative=alternative)(*paired_pair(b, t))
    direct = ss.permutation_test(
        (t - b,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=stats.MAX_RESAMPLES,
        alternative=alternative,
        **seeded(),
    )
    assert result.test == "paired permutation test"
    assert result.statistic == pytest.approx(direct.statistic)
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-12)
    # The interval is the paired t interval of the mean difference.
    assert tuple(result.confidence_interval()) == pytest.approx(
        tuple(ss.ttest_rel(t, b).confidence_interval()), rel=1e-9
    )


@pytest.mark.parametrize("n_resamples", [stats.MAX_RESAMPLES, 999])
def test_independent_permutation_test_equals_scipy_relabelling_permutation_test(
    n_resamples: int,
) -> None:
    b, t = independent_data(n_t=10)
    result = stats.permutation_test(n_resamples=n_resamples)(*unpaired_pair(b, t))
    direct = ss.permutation_test(
        (t, b),
        lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_resamples,
        **seeded(),
    )
    assert result.test == "independent permutation test"
    assert result.statistic == pytest.approx(direct.statistic)
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-12)
    assert result.paired is False


def test_permutation_test_paired_argument_overrides_the_seeds() -> None:
    b, t = paired_data()
    assert stats.permutation_test(paired=True)(*unpaired_pair(b, t)).paired is True
    assert stats.permutation_test(paired=False)(*paired_pair(b, t)).paired is False
    # Plain mappings carry no seeds, so nothing pairs them.
    assert stats.permutation_test()({"m": list(b)}, {"m": list(t)}).paired is False


def test_resample_counts_are_capped_at_max_resamples() -> None:
    b, t = independent_data()
    capped = stats.permutation_test(n_resamples=10**7)(*unpaired_pair(b, t))
    default = stats.permutation_test()(*unpaired_pair(b, t))
    assert capped.as_dict() == default.as_dict()
    capped = stats.bootstrap_ci(n_resamples=10**7)(*unpaired_pair(b, t))
    at_cap = stats.bootstrap_ci(n_resamples=stats.MAX_RESAMPLES)(*unpaired_pair(b, t))
    assert capped.as_dict() == at_cap.as_dict()


def _bootstrap(data: tuple[Any, ...], center: Any, level: float) -> Any:
    if len(data) == 1:

        def estimate(x: Any, axis: int) -> Any:
            return center(x, axis=axis)
    else:

        def estimate(x: Any, y: Any, axis: int) -> Any:  # type: ignore[misc]
            return center(x, axis=axis) - center(y, axis=axis)

    return ss.bootstrap(
        data,
        estimate,
        n_resamples=stats.BOOTSTRAP_RESAMPLES,
        vectorized=True,
        method="percentile",
        confidence_level=level,
        **seeded(),
    )


@pytest.mark.parametrize("statistic", ["mean", "median"])
@pytest.mark.parametrize("paired", [False, True], ids=["independent", "paired"])
def test_bootstrap_ci_equals_scipy_percentile_bootstrap(statistic: str, paired: bool) -> None:
    b, t = paired_data(shift=0.3)
    center = np.mean if statistic == "mean" else np.median
    pair = paired_pair(b, t) if paired else unpaired_pair(b, t)
    result = stats.bootstrap_ci(statistic=statistic)(*pair)
    data = (t - b,) if paired else (t, b)
    assert result.test == f"bootstrap ({statistic})"
    assert result.paired is paired
    point = center(t - b) if paired else center(t) - center(b)
    assert result.statistic == pytest.approx(point)
    assert result.difference == pytest.approx(point)
    for level in (0.90, 0.95, 0.99):
        direct = _bootstrap(data, center, level)
        assert tuple(result.confidence_interval(level)) == pytest.approx(
            tuple(direct.confidence_interval), rel=1e-9
        )
    # The decision is a permutation test of the same statistic: percentile bootstrap
    # intervals under-cover at small n (see test_stats_simulation.py).
    for alternative in ("two-sided", "greater"):
        decided = stats.bootstrap_ci(statistic=statistic, alternative=alternative)(*pair)
        direct_p = ss.permutation_test(
            data,
            (lambda x, axis: center(x, axis=axis))
            if paired
            else (lambda x, y, axis: center(x, axis=axis) - center(y, axis=axis)),
            permutation_type="samples" if paired else "independent",
            vectorized=True,
            n_resamples=stats.BOOTSTRAP_RESAMPLES,
            alternative=alternative,
            **seeded(),
        ).pvalue
        assert decided.pvalue == pytest.approx(direct_p, rel=1e-12)


# --- effect sizes ---------------------------------------------------------------------------


def test_welch_effect_size_is_hedges_g_with_the_small_sample_correction() -> None:
    b, t = independent_data(n_t=9)
    n1, n2 = len(b), len(t)
    pooled = math.sqrt(((n1 - 1) * b.var(ddof=1) + (n2 - 1) * t.var(ddof=1)) / (n1 + n2 - 2))
    g = (t.mean() - b.mean()) / pooled * (1 - 3 / (4 * (n1 + n2) - 9))
    result = stats.welch_t_test()(*unpaired_pair(b, t))
    assert result.effect_size_name == "hedges_g"
    assert result.effect_size == pytest.approx(g, rel=1e-12)


def test_paired_effect_size_is_d_z_of_the_differences() -> None:
    b, t = paired_data()
    d = t - b
    for verifier in (stats.paired_t_test(), stats.permutation_test(), stats.auto()):
        result = verifier(*paired_pair(b, t))
        assert result.effect_size_name == "d_z"
        assert result.effect_size == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)


def test_rank_tests_report_cliffs_delta() -> None:
    b, t = independent_data(n_t=10)
    u = ss.mannwhitneyu(t, b).statistic
    by_u = 2 * u / (len(b) * len(t)) - 1
    by_pairs = (sum(1 for x in t for y in b if x > y) - sum(1 for x in t for y in b if x < y)) / (
        len(b) * len(t)
    )
    result = stats.mann_whitney()(*unpaired_pair(b, t))
    assert result.effect_size_name == "cliffs_delta"
    assert result.effect_size == pytest.approx(by_u)
    assert result.effect_size == pytest.approx(by_pairs)
    assert stats.cliffs_delta(b, t) == pytest.approx(by_u)
    assert stats.wilcoxon()(*paired_pair(b[:10], t)).effect_size_name == "cliffs_delta"


def test_every_verdict_reports_the_smallest_effect_a_t_test_detects_with_80_percent_power() -> None:
    b, t = paired_data()
    d = t - b
    se = d.std(ddof=1) / math.sqrt(N)
    expected = (ss.t.ppf(0.975, N - 1) + ss.t.ppf(0.8, N - 1)) * se
    assert stats.paired_t_test()(*paired_pair(b, t)).mde == pytest.approx(expected, rel=1e-9)
    for verifier in (stats.welch_t_test(), stats.mann_whitney(), stats.bootstrap_ci()):
        mde = verifier(*unpaired_pair(b, t)).mde
        assert 0 < mde < 10


# --- results ---------------------------------------------------------------------------------


ALL_VERIFIERS = [
    stats.welch_t_test(),
    stats.paired_t_test(),
    stats.mann_whitney(),
    stats.wilcoxon(),
    stats.permutation_test(),
    stats.bootstrap_ci(),
    stats.bootstrap_ci(statistic="median"),
    stats.auto(),
    stats.non_inferior(margin=0.5),
    stats.equivalent(margin=2.0),
]


@pytest.mark.parametrize("verifier", ALL_VERIFIERS, ids=repr)
def test_results_are_frozen_and_as_dict_has_p_value_and_significant(verifier: Any) -> None:
    b, t = paired_data()
    result = verifier(*paired_pair(b, t))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.pvalue = 0.0
    shown = result.as_dict()
    assert shown["p_value"] == result.pvalue == shown["pvalue"]
    assert shown["significant"] is result.significant is (result.outcome == "passed")
    assert shown["outcome"] in ("passed", "failed", "inconclusive")
    assert (shown["ci_low"], shown["ci_high"]) == tuple(result.confidence_interval(0.95))
    assert 0.0 <= result.pvalue <= 1.0
    assert_all_finite(result)


def test_confidence_interval_at_an_unknown_level_names_the_levels_it_has() -> None:
    result = stats.welch_t_test()(*unpaired_pair(*independent_data()))
    with pytest.raises(ValueError, match=r"one of 0\.9, 0\.95, 0\.99 .*got 0\.8"):
        result.confidence_interval(0.8)


@pytest.mark.parametrize(
    "verifier",
    [
        stats.permutation_test(),
        stats.permutation_test(paired=False),
        stats.bootstrap_ci(),
        stats.bootstrap_ci(statistic="median", paired=False),
        stats.mann_whitney(),
        stats.wilcoxon(),
    ],
    ids=repr,
)
def test_resampling_verdicts_are_identical_on_rerun(verifier: Any) -> None:
    b = np.array([3, 4, 4, 5, 5, 5, 6, 6, 7, 7, 8, 9], dtype=float)  # ties: permutation p
    t = b + np.array([1, 0, 2, 1, -1, 1, 2, 0, 1, 3, 1, 1], dtype=float)
    first = verifier(*paired_pair(b, t)).as_dict()
    np.random.seed(1)  # global state must not matter
    second = verifier(*paired_pair(b, t)).as_dict()
    assert first == second


@pytest.mark.parametrize(
    ("n", "design", "ties", "expected"),
    [
        (12, "paired", False, "auto: paired t-test"),
        (12, "unpaired", False, "auto: Welch t-test"),
        (12, "no seeds", False, "auto: Welch t-test"),
        (9, "paired", False, "auto: paired permutation test"),
        (9, "unpaired", False, "auto: independent permutation test"),
        (20, "paired", True, "auto: paired permutation test"),
        (20, "unpaired", True, "auto: independent permutation test"),
        (50, "paired", True, "auto: paired permutation test"),
        (51, "paired", True, "auto: paired t-test"),  # ties at larger n: the t-test
        (400, "unpaired", True, "auto: Welch t-test"),
    ],
)
def test_auto_picks_paired_when_seeds_match_and_permutation_at_small_n_or_with_ties(
    n: int, design: str, ties: bool, expected: str
) -> None:
    b, t = paired_data(n=n)
    if ties:  # integer metrics: over a quarter of the values (or differences) are repeats
        b, t = np.round(b), np.round(t)
    if design == "paired":
        pair = paired_pair(b, t)
    elif design == "unpaired":
        pair = unpaired_pair(b, t)
    else:
        pair = ({"m": list(b)}, {"m": list(t)})  # type: ignore[assignment]
    result = stats.auto()(*pair)
    assert result.test == expected
    assert result.paired is ("paired" in expected)


def test_auto_with_seeds_in_a_different_order_is_not_paired() -> None:
    b, t = paired_data()
    shuffled = as_samples(t, tuple(reversed(range(N))))
    assert stats.auto()(as_samples(b, tuple(range(N))), shuffled).test == "auto: Welch t-test"


# --- degenerate data ------------------------------------------------------------------------

DEGENERATE = {
    "deterministic difference": ([1.5] * 6, [2.0] * 6),
    "no variance": ([1.5] * 6, [1.5] * 6),
    "too few replicates": ([1.5], [2.0]),
    "invalid data": ([1.0, 2.0, float("nan"), 1.5], [1.0, 2.5, 3.0, 2.0]),
    "invalid data (inf)": ([1.0, 2.0, 1.2, 1.5], [1.0, float("inf"), 3.0, 2.0]),
    "invalid data (None)": ([1.0, 2.0, 1.2, 1.5], [1.0, None, 3.0, 2.0]),
}

T_AND_RANK_TESTS = [
    stats.welch_t_test(),
    stats.paired_t_test(),
    stats.mann_whitney(),
    stats.wilcoxon(),
    stats.permutation_test(),
    stats.permutation_test(paired=False),
    stats.bootstrap_ci(),
    stats.bootstrap_ci(statistic="median", paired=False),
    stats.auto(),
]


@pytest.mark.parametrize("verifier", T_AND_RANK_TESTS, ids=repr)
@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_data_get_a_named_reason_and_finite_numbers(verifier: Any, case: str) -> None:
    b, t = DEGENERATE[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = verifier(*paired_pair(b, t))
    name = case.split(" (")[0]
    assert result.reason.startswith(name), result.reason
    assert_all_finite(result)
    expected = {
        "deterministic difference": "passed",
        "no variance": "failed",
        "too few replicates": "inconclusive",
        "invalid data": "failed",
    }[name]
    assert result.outcome == expected
    if name == "deterministic difference":
        assert result.difference == pytest.approx(0.5)
        assert "+0.5" in result.reason
    if name == "invalid data":
        assert "1 NaN or infinite" in result.reason


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_a_deterministic_difference_passes_only_in_the_direction_claimed(alternative: str) -> None:
    result = stats.welch_t_test(alternative=alternative)({"m": [1.0] * 5}, {"m": [2.0] * 5})
    assert result.reason.startswith("deterministic difference of +1")
    assert result.outcome == ("passed" if alternative == "greater" else "failed")
    assert result.pvalue == (0.0 if alternative == "greater" else 1.0)


def test_identical_replicates_shifted_by_a_constant_are_a_deterministic_paired_difference() -> None:
    b = np.arange(1.0, 9.0)
    result = stats.paired_t_test()(*paired_pair(b, b + 2.0))
    assert (
        result.reason == "deterministic difference of +2, zero variance of the paired differences"
    )
    assert result.outcome == "passed"
    assert_all_finite(result)


def test_a_deterministic_shift_up_to_rounding_is_still_a_deterministic_difference() -> None:
    # Common random numbers and a treatment that adds 0.1: the paired differences agree to
    # within rounding (spread ~1e-16), which must not read as p ~ 1e-100.
    b = np.random.default_rng(3).normal(0.0, 1.0, 8)
    t = b + 0.1
    assert np.ptp(t - b) > 0  # the rounding this test is about
    result = stats.paired_t_test()(*paired_pair(b, t))
    assert result.reason.startswith("deterministic difference of +0.1"), (
        f"{result.reason} (p={result.pvalue:.3g}, statistic={result.statistic:.3g})"
    )


@pytest.mark.parametrize(
    "verifier", [stats.non_inferior(margin=0.1), stats.equivalent(margin=0.1)], ids=repr
)
@pytest.mark.parametrize("case", list(DEGENERATE))
def test_gates_on_degenerate_data_have_finite_numbers(verifier: Any, case: str) -> None:
    b, t = DEGENERATE[case]
    result = verifier(*paired_pair(b, t))
    assert_all_finite(result)
    name = case.split(" (")[0]
    if name in ("too few replicates", "invalid data"):
        assert result.reason.startswith(name)
    else:  # zero variance: the change is known exactly, so the gate decides on it
        assert result.outcome == (
            "failed"
            if name == "deterministic difference" and "equivalence" in result.test
            else "passed"
        )


NEARLY_IDENTICAL = ([1.0, 1.0 + 1e-15, 1.0, 1.0], [2.0, 2.0, 2.0 + 1e-15, 2.0])


def test_data_constant_up_to_rounding_is_named_degenerate_rather_than_warned_about() -> None:
    """scipy warns about precision loss on such data; the built-ins name the case instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = stats.welch_t_test()(*paired_pair(*NEARLY_IDENTICAL))
        paired = stats.paired_t_test()(*paired_pair(*NEARLY_IDENTICAL))
    assert result.reason.startswith("deterministic difference of +1"), result.reason
    assert paired.reason.startswith("deterministic difference of +1"), paired.reason
    assert result.warnings == ()
    assert_all_finite(result)


@verifier_factory
def warns_then_answers(baseline, treatment):
    warnings.warn("Precision loss in a user's verifier", RuntimeWarning, stacklevel=2)
    return {"p_value": 0.01, "significant": True}


def test_warnings_inside_a_verifier_are_recorded_not_raised() -> None:
    b, t = paired_data(shift=0.3)
    hyp = Hypothesis(verifier=warns_then_answers(), metrics="m", name="h")
    metrics = {
        BASELINE_CONDITION: ConditionMetrics(BASELINE_CONDITION, {"m": list(b)}, tuple(range(N))),
        "t": ConditionMetrics("t", {"m": list(t)}, tuple(range(N))),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (result,) = evaluate([hyp], metrics, BASELINE_CONDITION, ["t"])
    assert result.warnings == {"t": ("RuntimeWarning: Precision loss in a user's verifier",)}


# --- through evaluate and judge --------------------------------------------------------------


@data_source
def replicate_index(ctx):
    return ctx["replicate"]


@pipeline_step()
def record(index, ctx):
    return index, {"m": float(index)}


def experiment_with(
    verifier: Any, replicates: int, treatments: tuple[str, ...] = ("t",), **options: Any
) -> Experiment:
    builder = (
        Experiment.builder("stats")
        .datasource(replicate_index())
        .add_step(record())
        .treatments([treatment(name, {}) for name in treatments])
        .hypotheses([Hypothesis(verifier=verifier, metrics="m", name="h")])
        .replicates(replicates)
    )
    if "correction" in options:
        builder = builder.correction(options["correction"])
    return builder.build()


def runs_for(conditions: dict[str, Any]) -> list[RunResult]:
    """Synthetic runs: replicate ``i`` of every condition has seed ``1000 + i``."""
    return [
        RunResult(condition, i, 1000 + i, {"m": (float(v),)})
        for condition, values in conditions.items()
        for i, v in enumerate(values)
    ]


def test_a_verifier_warning_reaches_the_verdict_notes_under_filterwarnings_error() -> None:
    b, t = paired_data(shift=0.3)
    experiment = experiment_with(warns_then_answers(), N)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (verdict,) = judge("stats", experiment, runs_for({BASELINE_CONDITION: b, "t": t}), ["t"])
    assert verdict.outcome == "passed"
    assert any("RuntimeWarning: Precision loss" in note for note in verdict.notes), verdict.notes
    assert "note: RuntimeWarning: Precision loss" in verdict.message


def test_evaluate_passes_seeds_so_verifiers_see_paired_replicates() -> None:
    b, t = paired_data()
    seeds = tuple(1000 + i for i in range(N))
    metrics = {
        BASELINE_CONDITION: ConditionMetrics(BASELINE_CONDITION, {"m": list(b)}, seeds),
        "t": ConditionMetrics("t", {"m": list(t)}, seeds),
    }
    hyp = Hypothesis(verifier=stats.auto(), metrics="m", name="h")
    (result,) = evaluate([hyp], metrics, BASELINE_CONDITION, ["t"])
    assert result.results["t"].test == "auto: paired t-test"
    assert result.results["t"].pvalue == pytest.approx(ss.ttest_rel(t, b).pvalue)


def test_the_judge_adjusts_p_values_over_the_family_and_reports_raw_and_adjusted() -> None:
    b, t = paired_data(shift=0.0)
    shifts = {"a": 0.45, "b": 0.0, "c": 0.05}
    conditions = {BASELINE_CONDITION: b, **{k: t + s for k, s in shifts.items()}}
    raw = {k: ss.ttest_rel(conditions[k], b).pvalue for k in shifts}
    for correction, factor in (("holm", None), ("bonferroni", 3), ("none", 1)):
        experiment = experiment_with(stats.paired_t_test(), N, tuple(shifts))
        verdicts = judge("stats", experiment, runs_for(conditions), list(shifts), correction)
        expected = adjust_pvalues([raw[k] for k in shifts], correction)
        for verdict, adjusted in zip(verdicts, expected, strict=True):
            assert verdict.pvalue == pytest.approx(raw[verdict.treatment])
            assert verdict.pvalue_adjusted == pytest.approx(adjusted)
            assert verdict.correction == correction
            if factor is not None:
                assert adjusted == pytest.approx(min(1.0, factor * raw[verdict.treatment]))


def test_a_raw_pass_that_fails_after_correction_says_so() -> None:
    rng = np.random.default_rng(8)
    b = 10.0 + rng.standard_normal(N)
    e = rng.standard_normal(N)
    e = (e - e.mean()) / e.std(ddof=1)
    m = ss.t.isf(0.015, N - 1) / math.sqrt(N)  # paired differences m + e: raw p = 0.03
    conditions = {
        BASELINE_CONDITION: b,
        "a": b + m + e,
        "b": b + e[::-1],
        "c": b + 0.1 + np.roll(e, 1),
        "d": b - 0.1 + np.roll(e, 2),
    }
    assert ss.ttest_rel(conditions["a"], b).pvalue == pytest.approx(0.03)
    experiment = experiment_with(stats.paired_t_test(), N, ("a", "b", "c", "d"))
    verdicts = {
        v.treatment: v
        for v in judge("stats", experiment, runs_for(conditions), ["a", "b", "c", "d"])
    }
    assert verdicts["a"].outcome == "failed"
    assert "not after holm correction over 4 comparisons" in verdicts["a"].message
    experiment = experiment_with(stats.paired_t_test(), N, ("a", "b", "c", "d"), correction="none")
    verdicts = {
        v.treatment: v
        for v in judge("stats", experiment, runs_for(conditions), ["a", "b", "c", "d"], "holm")
    }
    assert verdicts["a"].outcome == "passed"  # the experiment's correction wins


# --- non-regression gates -------------------------------------------------------------------


def gate_data(mean_change: float, sd: float, n: int = N, level: float = 100.0) -> tuple[Any, Any]:
    """Baseline around ``level``; treatment = baseline + ``mean_change`` + noise of exactly
    ``sd`` (standardised), so the paired statistics are known in advance."""
    rng = np.random.default_rng(42)
    b = level + rng.normal(0.0, 1.0, n)
    e = rng.normal(0.0, 1.0, n)
    e = (e - e.mean()) / e.std(ddof=1)
    return b, b + mean_change + sd * e


@pytest.mark.parametrize(
    ("change", "sd", "expected"),
    [(0.5, 1.0, "passed"), (-1.0, 2.0, "inconclusive"), (-5.0, 1.0, "failed")],
)
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_non_inferior_passes_fails_or_is_inconclusive(
    change: float, sd: float, expected: str, relative: bool
) -> None:
    b, t = gate_data(change, sd)
    margin = 0.02 if relative else 2.0 * abs(b.mean()) / 100
    delta = 0.02 * abs(b.mean())
    result = stats.non_inferior(margin=margin, relative=relative)(*paired_pair(b, t))
    assert result.test == "paired non-inferiority t-test"
    assert result.outcome == expected, result.reason
    # The p-value is the one-sided paired t-test against the shifted null change = -margin.
    direct = ss.ttest_rel(t + delta, b, alternative="greater")
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-9)
    assert result.statistic == pytest.approx(direct.statistic, rel=1e-9)
    assert result.difference == pytest.approx(change, abs=1e-9)
    assert (result.pvalue < 0.05) is (expected == "passed")


def test_an_inconclusive_relative_gate_says_the_interval_the_margin_and_the_detectable_change() -> (
    None
):
    b, t = gate_data(-1.0, 2.0)
    result = stats.non_inferior(margin=0.02, relative=True)(*paired_pair(b, t))
    pattern = (
        r"inconclusive: 90% CI of the change \[(?P<low>[-+]\d+\.\d)%, (?P<high>[-+]\d+\.\d)%\] "
        r"crosses the margin -2\.0%; with n=12 the smallest detectable change is "
        r"(?P<mde>\d+\.\d)%"
    )
    match = re.fullmatch(pattern, result.reason)
    assert match, result.reason
    se = (t - b).std(ddof=1) / math.sqrt(N)
    q = ss.t.ppf(0.95, N - 1)
    mean_b = b.mean()
    assert float(match["low"]) == pytest.approx(100 * (-1.0 - q * se) / mean_b, abs=0.051)
    assert float(match["high"]) == pytest.approx(100 * (-1.0 + q * se) / mean_b, abs=0.051)
    mde = (q + ss.t.ppf(0.8, N - 1)) * se
    assert float(match["mde"]) == pytest.approx(100 * mde / mean_b, abs=0.051)
    assert result.mde == pytest.approx(mde)


def test_an_inconclusive_absolute_gate_shows_the_margin_in_the_metrics_units() -> None:
    b, t = gate_data(-1.0, 2.0)
    result = stats.non_inferior(margin=2.0)(*paired_pair(b, t))
    assert result.outcome == "inconclusive"
    assert re.fullmatch(
        r"inconclusive: 90% CI of the change \[-2\.\d+, \+0\.\d+\] crosses the margin -2; "
        r"with n=12 the smallest detectable change is 1\.\d+",
        result.reason,
    ), result.reason


@pytest.mark.parametrize(
    ("increase", "expected"), [(-0.5, "passed"), (1.0, "inconclusive"), (5.0, "failed")]
)
def test_non_inferior_with_lower_is_better_treats_an_increase_as_a_regression(
    increase: float, expected: str
) -> None:
    b, latency = gate_data(increase, 2.0 if expected == "inconclusive" else 1.0)
    result = stats.non_inferior(margin=0.02, relative=True, higher_is_better=False)(
        *paired_pair(b, latency)
    )
    assert result.outcome == expected, result.reason
    assert result.difference == pytest.approx(increase, abs=1e-9)  # still treatment - baseline
    delta = 0.02 * b.mean()
    direct = ss.ttest_rel(b + delta, latency, alternative="greater")
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-9)
    if expected == "inconclusive":
        assert "crosses the margin +2.0%" in result.reason


def test_non_inferior_without_paired_replicates_uses_welch() -> None:
    b, t = gate_data(0.5, 1.0)
    result = stats.non_inferior(margin=2.0)(*unpaired_pair(b, t))
    assert result.test == "non-inferiority t-test"
    assert result.paired is False
    direct = ss.ttest_ind(t + 2.0, b, equal_var=False, alternative="greater")
    assert result.pvalue == pytest.approx(direct.pvalue, rel=1e-9)


@pytest.mark.parametrize(
    ("change", "sd", "expected"),
    [(0.3, 1.0, "passed"), (-1.5, 2.0, "inconclusive"), (4.0, 1.0, "failed")],
)
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_equivalent_is_two_one_sided_tests(
    change: float, sd: float, expected: str, relative: bool
) -> None:
    b, t = gate_data(change, sd)
    delta = 0.02 * abs(b.mean())
    margin = 0.02 if relative else delta
    result = stats.equivalent(margin=margin, relative=relative)(*paired_pair(b, t))
    assert result.test == "paired equivalence (TOST)"
    assert result.outcome == expected, result.reason
    lower = ss.ttest_rel(t + delta, b, alternative="greater").pvalue
    upper = ss.ttest_rel(t - delta, b, alternative="less").pvalue
    assert result.pvalue == pytest.approx(max(lower, upper), rel=1e-9)
    assert (result.pvalue < 0.05) is (expected == "passed")
    if expected == "inconclusive":
        shown = "+-2.0%" if relative else f"+-{delta:.4g}"
        assert f"crosses the margin {shown}; with n=12" in result.reason


# --- family correction ----------------------------------------------------------------------

PVALUES = [0.01, 0.04, 0.03, 0.005, 0.5]


def test_holm_adjusted_p_values_equal_hand_computed_ones() -> None:
    # sorted: 0.005*5, 0.01*4, 0.03*3, 0.04*2, 0.5*1, made monotone
    assert adjust_pvalues(PVALUES, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])


def test_bonferroni_adjusted_p_values_equal_hand_computed_ones() -> None:
    assert adjust_pvalues(PVALUES, "bonferroni") == pytest.approx([0.05, 0.2, 0.15, 0.025, 1.0])


def test_bh_adjusted_p_values_equal_hand_computed_ones_and_scipy() -> None:
    # sorted: 0.005*5/1, 0.01*5/2, 0.03*5/3, 0.04*5/4, 0.5*5/5, made monotone from the top
    expected = [0.025, 0.05, 0.05, 0.025, 0.5]
    assert adjust_pvalues(PVALUES, "bh") == pytest.approx(expected)
    assert adjust_pvalues(PVALUES, "bh") == pytest.approx(
        list(ss.false_discovery_control(PVALUES, method="bh"))
    )
    rng = np.random.default_rng(5)
    many = list(rng.uniform(0, 0.2, 40) ** 2)
    assert adjust_pvalues(many, "bh") == pytest.approx(
        list(ss.false_discovery_control(many, method="bh")), rel=1e-12
    )


def test_adjusted_p_values_are_capped_at_one_and_none_changes_nothing() -> None:
    assert adjust_pvalues([0.3, 0.6], "bonferroni") == [0.6, 1.0]
    assert adjust_pvalues([0.6, 0.3], "holm") == pytest.approx([0.6, 0.6])
    assert adjust_pvalues(PVALUES, "none") == PVALUES
    assert adjust_pvalues([], "holm") == []
    assert adjust_pvalues([0.02], "holm") == [0.02]


# --- reachability and planning --------------------------------------------------------------


@pytest.mark.parametrize(
    ("verifier", "n", "floor"),
    [
        (stats.wilcoxon(), 5, 2 / 2**5),
        (stats.wilcoxon(alternative="greater"), 5, 1 / 2**5),
        (stats.mann_whitney(), 3, 0.1),
        (stats.mann_whitney(), 4, 2 / 70),
        (stats.permutation_test(paired=True), 4, 2 / 16),
        (stats.permutation_test(paired=False), 3, 0.1),
        (stats.auto(), 5, 2 / 2**5),
        (stats.bootstrap_ci(n_resamples=19), 10, 0.1),
        (stats.welch_t_test(), 2, 0.0),
        (stats.paired_t_test(), 2, 0.0),
    ],
    ids=lambda v: repr(v) if not isinstance(v, int | float) else str(v),
)
def test_min_pvalue_is_the_smallest_p_value_the_test_can_produce(
    verifier: Any, n: int, floor: float
) -> None:
    assert stats.min_pvalue(verifier, n) == pytest.approx(floor)


def test_wilcoxon_min_pvalue_at_five_pairs_is_what_scipy_gives_for_perfect_separation() -> None:
    assert ss.wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0]).pvalue == pytest.approx(
        stats.min_pvalue(stats.wilcoxon(), 5)
    )


def test_an_unreachable_alpha_is_an_error_when_the_experiment_is_built() -> None:
    with pytest.raises(ExperimentDefinitionError) as info:
        experiment_with(stats.wilcoxon(), 5)
    message = str(info.value)
    for part in ("'stats'", "hypothesis 'h'", "wilcoxon", "5 replicates", "0.0625", "alpha=0.05"):
        assert part in message, message
    with pytest.raises(ExperimentDefinitionError, match=r"mann_whitney .*0\.1 >= alpha=0\.05"):
        experiment_with(stats.mann_whitney(), 3)
    with pytest.raises(ExperimentDefinitionError, match=r"0\.0625 >= alpha=0\.06"):
        experiment_with(stats.wilcoxon(alpha=0.06), 5)


@pytest.mark.parametrize(
    ("verifier", "replicates", "smallest_p"),
    [
        pytest.param(stats.wilcoxon(), 6, 0.03125, id="wilcoxon-6"),  # 2 / 2**6 < 0.05
        pytest.param(stats.wilcoxon(alpha=0.1), 5, 0.0625, id="wilcoxon-5-alpha-0.1"),  # < 0.1
        pytest.param(stats.mann_whitney(), 4, 2 / 70, id="mann_whitney-4"),  # 2 / C(8, 4)
        pytest.param(stats.paired_t_test(), 2, None, id="paired_t_test-2"),  # no floor
    ],
)
def test_a_reachable_alpha_builds_an_experiment_whose_verdict_can_pass(
    verifier: Any, replicates: int, smallest_p: float | None
) -> None:
    experiment = experiment_with(verifier, replicates)
    assert experiment.replicates == replicates
    (hyp,) = experiment.hypotheses
    assert (hyp.name, hyp.verifier_name, hyp.metrics_spec) == ("h", verifier.name, "m")
    assert [c for c, _ in experiment.conditions()] == [BASELINE_CONDITION, "t"]
    # The most extreme data: every treated replicate above every baseline value, each
    # difference distinct (no ties), so the test reaches its smallest p-value.
    base = [float(i) for i in range(replicates)]
    treated = [b + 10.0 + i / 1000 for i, b in enumerate(base)]
    runs = runs_for({BASELINE_CONDITION: base, "t": treated})
    (verdict,) = judge("stats", experiment, runs, ["t"])
    assert verdict.outcome == "passed", verdict.message
    assert verdict.pvalue is not None
    assert verdict.alpha is not None
    assert verdict.pvalue < verdict.alpha
    if smallest_p is not None:
        assert verdict.pvalue == pytest.approx(smallest_p)


def nct_replicates(d_z: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """The smallest n whose two-sided paired t-test has ``power`` at ``d_z`` (noncentral t)."""
    for n in range(2, 10_000):
        df, crit = n - 1, ss.t.ppf(1 - alpha / 2, n - 1)
        nc = d_z * math.sqrt(n)
        if ss.nct.sf(crit, df, nc) + ss.nct.cdf(-crit, df, nc) >= power:
            return n
    raise AssertionError("not found")


@pytest.mark.parametrize("d_z", [0.3, 0.5, 0.8, 1.2])
def test_replicates_needed_agrees_with_the_noncentral_t_power(d_z: float) -> None:
    assert stats.replicates_needed(2.0, 2.0 * d_z, paired=True) == nct_replicates(d_z)


def test_replicates_needed_for_d_z_one_half_is_34_pairs_or_64_per_arm_unpaired() -> None:
    assert stats.replicates_needed(1.0, 0.5, paired=True) == 34
    assert stats.replicates_needed(1.0, -0.5, paired=True) == 34
    assert stats.replicates_needed(1.0, 0.5, paired=False) == 64


@data_source
def noisy(ctx):
    return float(ctx.rng.normal(10.0, 1.0))


@pipeline_step()
def jitter(value, ctx, *, delta=0.0, spread=0.0):
    value = value + delta + spread * float(ctx.rng.normal())
    return value, {"m": value}


def pilot_result() -> Any:
    experiment = (
        Experiment.builder("pilot")
        .datasource(noisy())
        .add_step(jitter())
        .treatments([treatment("noisy", {"delta": 0.2, "spread": 0.5})])
        .replicates(10)
        .build()
    )
    return experiment.run()


def test_plan_reports_the_replicates_needed_for_an_effect_from_a_pilot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the pilot writes its run metadata here
    result = pilot_result()
    b = np.array(result.metrics.baseline.metrics["m"])
    t = np.array(result.metrics.treatments["noisy"].metrics["m"])
    sd = (t - b).std(ddof=1)
    (planned,) = stats.plan(result, "m", 0.5 * sd)
    assert isinstance(planned, stats.PlanResult)
    assert (planned.treatment, planned.metric, planned.paired) == ("noisy", "m", True)
    assert planned.pilot_replicates == 10
    assert planned.sd == pytest.approx(sd)
    assert planned.replicates_needed == 34 == nct_replicates(0.5)
    se = sd / math.sqrt(10)
    assert planned.mde_now == pytest.approx((ss.t.ppf(0.975, 9) + ss.t.ppf(0.8, 9)) * se)
    assert "34 replicates to detect" in str(planned)
    (relative,) = stats.plan(result, "m", 0.05, relative=True)
    assert relative.effect == pytest.approx(0.05 * abs(b.mean()))
    assert relative.replicates_needed == stats.replicates_needed(
        sd, 0.05 * abs(b.mean()), paired=True
    )


def test_plan_names_an_unknown_metric_and_refuses_a_zero_effect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = pilot_result()
    with pytest.raises(CrystallizeUsageError, match=r"no metric 'x'; recorded metrics: m"):
        stats.plan(result, "x", 0.5)
    with pytest.raises(CrystallizeUsageError, match=r"must not be 0"):
        stats.plan(result, "m", 0.0)


# --- invalid arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [
        stats.welch_t_test,
        stats.paired_t_test,
        stats.mann_whitney,
        stats.wilcoxon,
        stats.permutation_test,
        stats.bootstrap_ci,
    ],
    ids=lambda f: f.name,
)
def test_an_unknown_alternative_is_a_usage_error_naming_the_choices(factory: Any) -> None:
    # refused where the verifier is made, before any run computed data for it
    with pytest.raises(CrystallizeUsageError, match=r"alternative=.*'two-sided'.*got 'bigger'"):
        factory(alternative="bigger")


def test_auto_refuses_an_unknown_alternative_too() -> None:
    with pytest.raises(CrystallizeUsageError, match=r"got 'bigger'"):
        stats.auto(alternative="bigger")(*paired_pair(*paired_data()))


@pytest.mark.parametrize("margin", [0, -0.1, True, "2%", None])
@pytest.mark.parametrize("gate", [stats.non_inferior, stats.equivalent])
def test_a_margin_that_is_not_a_positive_number_is_a_usage_error(gate: Any, margin: Any) -> None:
    with pytest.raises(CrystallizeUsageError, match=r"margin=\.\.\.\) takes a positive number"):
        gate(margin=margin)(*paired_pair(*paired_data()))


def test_a_gate_needs_a_margin() -> None:
    with pytest.raises(CrystallizeUsageError, match=r"non_inferior\(\) needs parameter 'margin'"):
        stats.non_inferior()


def test_a_relative_margin_on_a_zero_baseline_mean_is_refused() -> None:
    with pytest.raises(HypothesisError, match=r"relative margin needs a baseline mean other"):
        stats.non_inferior(margin=0.02, relative=True)({"m": [-1.0, 1.0]}, {"m": [0.0, 1.0]})


def test_bootstrap_ci_takes_mean_or_median_only() -> None:
    with pytest.raises(CrystallizeUsageError, match=r"takes 'mean' or 'median', got 'mode'"):
        stats.bootstrap_ci(statistic="mode")(*paired_pair(*paired_data()))


def test_an_unknown_verifier_parameter_is_refused_when_bound() -> None:
    with pytest.raises(CrystallizeUsageError, match=r"unknown parameter 'alpah'"):
        stats.welch_t_test(alpah=0.01)


@pytest.mark.parametrize("how", ["keyword", "builder"])
def test_an_unknown_correction_is_refused_when_the_experiment_is_built(how: str) -> None:
    pattern = r"correction takes one of holm, bonferroni, bh, none, got 'sidak'"
    if how == "builder":
        with pytest.raises(CrystallizeUsageError, match=pattern):
            experiment_with(stats.welch_t_test(), 10, correction="sidak")
    else:
        with pytest.raises(CrystallizeUsageError, match=pattern):
            Experiment(replicate_index(), [record()], name="x", correction="sidak")


def test_paired_tests_refuse_unequal_replicate_counts() -> None:
    for verifier in (stats.paired_t_test(), stats.wilcoxon()):
        with pytest.raises(HypothesisError, match=r"paired samples need equal n, got 3 vs 4"):
            verifier({"m": [1.0, 2.0, 3.0]}, {"m": [1.0, 2.0, 3.0, 4.0]})


def test_a_verifier_compares_one_metric_at_a_time() -> None:
    with pytest.raises(HypothesisError, match=r"compares one metric, got metrics \['a', 'b'\]"):
        stats.welch_t_test()({"a": [1.0, 2.0], "b": [1.0, 2.0]}, {"a": [1.0], "b": [2.0]})


# --- order statistics of pairwise values, without forming them ------------------------------


@pytest.mark.parametrize(
    ("n", "m", "ties"),
    [(1, 1, False), (5, 7, False), (12, 9, True), (50, 50, False), (1000, 700, False),
     (1000, 700, True), (400, 400, True)],
)  # fmt: skip
def test_pairwise_order_statistics_are_those_of_the_sorted_values(
    n: int, m: int, ties: bool
) -> None:
    # Over 2^16 values the selection narrows by pivots before it partitions: the answer is
    # the same floating-point number sorting np.subtract.outer / np.add.outer would give.
    rng = np.random.default_rng(n * 1000 + m + ties)
    t, b = rng.normal(size=n), rng.normal(size=m)
    if ties:
        t, b = np.round(t * 3), np.round(b * 3)
    full = np.sort(np.subtract.outer(t, b).ravel())
    ranks = sorted({0, len(full) - 1, len(full) // 2, *rng.integers(0, len(full), size=5)})
    assert pairwise_differences(t, b, ranks) == [float(full[k]) for k in ranks]
    assert median_of(lambda r: pairwise_differences(t, b, r), len(full)) == np.median(full)
    d = t - np.resize(b, n)
    walsh = np.sort((np.add.outer(d, d) / 2)[np.triu_indices(n)])
    ranks = sorted({0, len(walsh) - 1, len(walsh) // 2, *rng.integers(0, len(walsh), size=5)})
    assert walsh_averages(d, ranks) == [float(walsh[k]) for k in ranks]
    assert median_of(lambda r: walsh_averages(d, r), len(walsh)) == np.median(walsh)


def test_cliffs_delta_counts_the_pairs_without_forming_them() -> None:
    rng = np.random.default_rng(5)
    b, t = np.round(rng.normal(size=300) * 2), np.round(rng.normal(0.3, size=200) * 2)
    result = stats.mann_whitney()(*unpaired_pair(b, t))
    assert result.effect_size == float(np.sign(np.subtract.outer(t, b)).mean())
