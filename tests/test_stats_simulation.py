"""Proof by simulation (issue 5, item 6): false-failure rates under a true null, Holm's
family-wise rate, and the power that pairing by seed buys.

Every simulation calls the statistics layer directly (no experiments), draws all its data at
once from a fixed seed, and runs 1,000 simulated experiments. A rate "within the binomial
99% interval of alpha" means between ``binom.interval(0.99, 1000, 0.05)`` / 1000, that is
[0.033, 0.068]: a correct test at alpha = 0.05 lands outside it in only 1% of seeds. The slow
resampling verifiers run with ``n_resamples=999`` (a randomized p-value with the +1 correction
is valid at any resample count). The measured rates are printed (``-s``) and are in every
assertion message.

The verifiers' p-values are computed for all 1,000 experiments at once: scipy's tests with
``axis=1`` in the method the library picks, and for the permutation test and the bootstrap
(whose decision and p-value are a seeded permutation test) the library's own seeded
permutations applied to every experiment (``_vectorised_pvalues``; the median's here). An
experiment passes when its p-value is below alpha. Every such simulation also calls the
library's verifier for real on a few of its experiments (the first three and the first that
passes) and checks the p-value (``rel=1e-9``), the outcome and the test it names: the rates
are the verifiers' own. The gates (three-way verdicts from confidence bounds) are called
experiment by experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _vectorised_pvalues as vp
import numpy as np
import pytest
from scipy import stats as ss

from pytest_crystallize import BASELINE_CONDITION, Hypothesis, stats
from pytest_crystallize._engine.hypotheses import Samples, evaluate
from pytest_crystallize._engine.results import ConditionMetrics
from pytest_crystallize.stats._common import MAX_RESAMPLES

SIMULATIONS = 1_000
N = 12  # replicates per condition unless noted
ALPHA = 0.05
RHO = 0.8  # correlation of paired replicates (common random numbers)
_LOW, _HIGH = ss.binom.interval(0.99, SIMULATIONS, ALPHA)
LOW, HIGH = _LOW / SIMULATIONS, _HIGH / SIMULATIONS
RESAMPLES = 999
CHECKED = 3  # experiments per simulation on which the real verifier is called (plus one)

Pvalue = Callable[[Any, Any], Any]  # (baseline rows, treatment rows) -> two-sided p per row


def draw(seed: int, *, paired: bool, n: int = N, shift: float = 0.0) -> tuple[Any, Any]:
    """``SIMULATIONS`` rows of baseline and treatment replicates, both N(0, 1) (the treatment
    shifted by ``shift``); paired rows are correlated at ``RHO``, independent rows are not."""
    z = np.random.default_rng(seed).standard_normal((2, SIMULATIONS, n))
    treated = RHO * z[0] + np.sqrt(1 - RHO**2) * z[1] if paired else z[1]
    return z[0], treated + shift


def as_samples(row: Any, seeds: tuple[int, ...]) -> Samples:
    s = Samples({"m": row.tolist()})
    s.seeds = seeds
    return s


def seeds_of(n_b: int, n_t: int, *, paired: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Paired rows share seeds (the replicates pair); independent rows have disjoint seeds."""
    seeds_b = tuple(range(n_b))
    return seeds_b, seeds_b if paired else tuple(range(n_b, n_b + n_t))


def outcomes(verifier: Any, baseline: Any, treated: Any, *, paired: bool) -> tuple[list[str], str]:
    """Each simulated experiment's outcome, and the test the verifier says it used."""
    seeds_b, seeds_t = seeds_of(baseline.shape[1], treated.shape[1], paired=paired)
    found, test = [], ""
    for b, t in zip(baseline, treated, strict=True):
        result = verifier(as_samples(b, seeds_b), as_samples(t, seeds_t))
        found.append(result.outcome)
        test = result.test
    return found, test


def checked_rows(pvalues: Any) -> list[int]:
    """The experiments called for real: the first ``CHECKED`` and the first that passes."""
    passing = np.flatnonzero(pvalues < ALPHA)
    return sorted({*range(CHECKED), *passing[:1].tolist()})


def verifiers_own(verifier: Any, baseline: Any, treated: Any, pvalues: Any, *, paired: bool) -> str:
    """Call ``verifier`` for real on the checked rows: its p-value is the vectorised one
    (``rel=1e-9``) and it passes exactly when that p-value is below alpha. Returns the test
    it names (the same on every row)."""
    seeds_b, seeds_t = seeds_of(baseline.shape[1], treated.shape[1], paired=paired)
    tests = set()
    for i in checked_rows(pvalues):
        result = verifier(as_samples(baseline[i], seeds_b), as_samples(treated[i], seeds_t))
        where = f"{verifier!r}, row {i}: {result.test}, p={result.pvalue!r}"
        assert result.pvalue == pytest.approx(pvalues[i], rel=1e-9), where
        assert result.outcome == ("passed" if pvalues[i] < ALPHA else "failed"), where
        tests.add(result.test)
    (test,) = tests
    return str(test)


def rate(found: Any, outcome: str = "passed") -> float:
    """The share of experiments with ``outcome``: of outcomes, or of p-values (passed: below
    alpha)."""
    if isinstance(found, np.ndarray):
        return float(np.count_nonzero(found < ALPHA)) / len(found)
    return sum(o == outcome for o in found) / len(found)


def report(label: str, value: float, test: str = "") -> str:
    line = (
        f"{label}: {value:.4f} over {SIMULATIONS} simulated experiments"
        + (f" ({test})" if test else "")
        + f"; binomial 99% interval of alpha=0.05: [{LOW:.4f}, {HIGH:.4f}]"
    )
    print(line)
    return line


def two_sided(pvalues: vp.Pvalues) -> Pvalue:
    return lambda b, t: pvalues(b, t)["two-sided"]


def permutation(paired: bool, resamples: int) -> Pvalue:
    return two_sided(vp.resampled(paired, resamples))


def median_permutation(b: Any, t: Any, *, resamples: int = RESAMPLES) -> Any:
    """scipy's two-sided permutation p-value of the difference of medians of independent
    samples (``bootstrap_ci(statistic="median")``'s decision), from the library's seeded
    relabellings of the pooled ``[t, b]`` (``vp.permutations``: the same at every call)."""
    n = b.shape[1]
    member, exact = vp.permutations(n, False, resamples)
    order = np.argsort(member, axis=1, kind="stable")  # the second sample's positions first
    second, first = order[:, :n], order[:, n:]
    adjust, count = (0, len(member)) if exact else (1, len(member) + 1)
    two = np.empty(len(b))
    for lo in range(0, len(b), 100):  # rows x resamples x n at a time: 10 MB
        rows = slice(lo, lo + 100)
        pooled = np.concatenate([t[rows], b[rows]], axis=1)
        observed = np.median(t[rows], axis=1) - np.median(b[rows], axis=1)
        null = np.median(pooled[:, first], axis=-1) - np.median(pooled[:, second], axis=-1)
        gamma = np.abs(100 * np.finfo(float).eps * observed)[:, None]  # scipy's tolerance
        high = (np.count_nonzero(null >= observed[:, None] - gamma, axis=1) + adjust) / count
        low = (np.count_nonzero(null <= observed[:, None] + gamma, axis=1) + adjust) / count
        two[rows] = np.clip(2 * np.minimum(low, high), 0, 1)
    return two


NULL_CASES = [
    pytest.param(
        stats.welch_t_test(), False, N, "Welch t-test", two_sided(vp.WELCH), id="welch_t_test"
    ),
    pytest.param(
        stats.paired_t_test(), True, N, "paired t-test", two_sided(vp.PAIRED_T), id="paired_t_test"
    ),
    pytest.param(
        stats.mann_whitney(),
        False,
        N,
        "Mann-Whitney U",
        two_sided(vp.MANN_WHITNEY),
        id="mann_whitney",
    ),
    pytest.param(
        stats.wilcoxon(), True, N, "Wilcoxon signed-rank", two_sided(vp.WILCOXON), id="wilcoxon"
    ),
    pytest.param(
        stats.permutation_test(n_resamples=RESAMPLES),
        False,
        N,
        "independent permutation test",
        permutation(False, RESAMPLES),
        id="permutation_test-independent",
    ),
    pytest.param(
        stats.permutation_test(n_resamples=RESAMPLES),
        True,
        N,
        "paired permutation test",
        permutation(True, RESAMPLES),
        id="permutation_test-paired",
    ),
    pytest.param(
        stats.bootstrap_ci(n_resamples=RESAMPLES),
        False,
        N,
        "bootstrap (mean)",
        permutation(False, RESAMPLES),
        id="bootstrap_ci-mean-independent",
    ),
    pytest.param(
        stats.bootstrap_ci(n_resamples=RESAMPLES),
        True,
        N,
        "bootstrap (mean)",
        permutation(True, RESAMPLES),
        id="bootstrap_ci-mean-paired",
    ),
    pytest.param(
        stats.bootstrap_ci(statistic="median", n_resamples=RESAMPLES),
        False,
        N,
        "bootstrap (median)",
        median_permutation,
        id="bootstrap_ci-median-independent",
    ),
    pytest.param(
        stats.auto(), True, N, "auto: paired t-test", two_sided(vp.PAIRED_T), id="auto-paired"
    ),
    pytest.param(
        stats.auto(), False, N, "auto: Welch t-test", two_sided(vp.WELCH), id="auto-independent"
    ),
    pytest.param(
        stats.auto(),  # below 10 replicates: the permutation test at its default resamples
        True,
        8,
        "auto: paired permutation test",
        permutation(True, MAX_RESAMPLES),
        id="auto-paired-n8",
    ),
]


@pytest.mark.parametrize(("verifier", "paired", "n", "test", "pvalues"), NULL_CASES)
def test_under_a_true_null_the_false_failure_rate_is_within_the_binomial_interval_of_alpha(
    verifier: Any, paired: bool, n: int, test: str, pvalues: Pvalue
) -> None:
    baseline, treated = draw(101, paired=paired, n=n)
    simulated = pvalues(baseline, treated)
    used = verifiers_own(verifier, baseline, treated, simulated, paired=paired)
    assert used == test  # the simulation exercised the test it meant to
    measured = rate(simulated)
    message = report(f"{verifier!r}, {'paired' if paired else 'independent'}, n={n}", measured)
    assert LOW <= measured <= HIGH, message


@pytest.mark.parametrize("paired", [True, False], ids=["paired", "independent"])
def test_non_inferior_at_a_true_change_of_exactly_minus_the_margin_passes_at_most_alpha(
    paired: bool,
) -> None:
    margin = 0.5
    baseline, treated = draw(202, paired=paired, shift=-margin)
    found, used = outcomes(stats.non_inferior(margin=margin), baseline, treated, paired=paired)
    assert used == ("paired " if paired else "") + "non-inferiority t-test"
    measured = rate(found)
    message = report(f"non_inferior(margin={margin}) at change -margin, {used}", measured)
    assert measured <= HIGH, message


def test_relative_lower_is_better_non_inferiority_at_the_margin_passes_at_most_alpha() -> None:
    # Latency around 100 ms; the treatment is exactly 2% slower, the margin is 2%.
    baseline, treated = draw(303, paired=True)
    baseline, treated = 100.0 + baseline, 102.0 + treated
    verifier = stats.non_inferior(margin=0.02, relative=True, higher_is_better=False)
    found, _ = outcomes(verifier, baseline, treated, paired=True)
    measured = rate(found)
    message = report("non_inferior(margin=2%, lower is better) at +2%", measured)
    assert measured <= HIGH, message


def test_equivalent_at_a_true_change_of_exactly_the_margin_passes_at_most_alpha() -> None:
    margin = 0.5
    baseline, treated = draw(404, paired=True, shift=margin)
    found, _ = outcomes(stats.equivalent(margin=margin), baseline, treated, paired=True)
    measured = rate(found)
    message = report(f"equivalent(margin={margin}) at change +margin", measured)
    assert measured <= HIGH, message


TREATMENTS = 5


def test_holm_over_five_treatments_keeps_the_family_wise_false_failure_rate_at_most_alpha() -> None:
    """Five null treatments against one shared baseline (so their p-values are correlated),
    evaluated as one family: the share of experiments with any passing verdict. The paired
    t-tests' p-values are vectorised and adjusted by the library's ``adjust_pvalues``; on a
    few experiments the engine's ``evaluate`` is called for real and gives the same numbers."""
    z = np.random.default_rng(505).standard_normal((TREATMENTS + 1, SIMULATIONS, N))
    baseline = z[0]
    treated = RHO * baseline + np.sqrt(1 - RHO**2) * z[1:]
    names = [f"t{k}" for k in range(TREATMENTS)]
    seeds = tuple(range(N))
    raw = np.array([vp.PAIRED_T(baseline, treated[k])["two-sided"] for k in range(TREATMENTS)]).T
    adjusted = np.array([stats.adjust_pvalues(row.tolist(), "holm") for row in raw])
    hyp = Hypothesis(verifier=stats.paired_t_test(), metrics="m", name="h")
    for i in checked_rows(raw.min(axis=1)):
        metrics = {
            BASELINE_CONDITION: ConditionMetrics(
                BASELINE_CONDITION, {"m": baseline[i].tolist()}, seeds
            )
        }
        for k, name in enumerate(names):
            metrics[name] = ConditionMetrics(name, {"m": treated[k, i].tolist()}, seeds)
        (result,) = evaluate([hyp], metrics, BASELINE_CONDITION, names, "holm")
        assert result.family_size == TREATMENTS
        for k, name in enumerate(names):
            where = f"experiment {i}, {name}: {result.results[name].test}"
            assert result.results[name].test == "paired t-test", where
            assert result.results[name].pvalue == pytest.approx(raw[i, k], rel=1e-9), where
            assert result.adjusted[name] == pytest.approx(adjusted[i, k], rel=1e-9), where
    any_adjusted = np.count_nonzero((adjusted < ALPHA).any(axis=1))
    any_raw = np.count_nonzero((raw < ALPHA).any(axis=1))
    family_wise, uncorrected = any_adjusted / SIMULATIONS, any_raw / SIMULATIONS
    message = report("Holm over 5 treatments, family-wise", family_wise)
    message += "; " + report("uncorrected over 5 treatments, family-wise", uncorrected)
    assert family_wise <= HIGH, message
    assert uncorrected > HIGH, message  # the correction is what keeps the family in bounds


def test_with_paired_replicates_auto_has_at_least_twice_the_power_of_welch() -> None:
    """rho = 0.8, n = 10, a true effect of 0.5 sd; the replicates pair by seed."""
    baseline, treated = draw(606, paired=True, n=10, shift=0.5)
    auto_p = vp.PAIRED_T(baseline, treated)["two-sided"]
    welch_p = vp.WELCH(baseline, treated)["two-sided"]
    auto_test = verifiers_own(stats.auto(), baseline, treated, auto_p, paired=True)
    welch_test = verifiers_own(stats.welch_t_test(), baseline, treated, welch_p, paired=True)
    assert auto_test == "auto: paired t-test"
    assert welch_test == "Welch t-test"
    auto_power, welch_power = rate(auto_p), rate(welch_p)
    message = (
        f"power at rho={RHO}, n=10, effect 0.5 sd over {SIMULATIONS} simulated experiments: "
        f"auto() {auto_power:.4f} ({auto_test}), welch_t_test() {welch_power:.4f}, "
        f"ratio {auto_power / welch_power:.2f}"
    )
    print(message)
    assert auto_power >= 2 * welch_power, message
