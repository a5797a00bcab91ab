"""Proof by simulation (issue 5, item 6): false-failure rates under a true null, Holm's
family-wise rate, and the power that pairing by seed buys.

Every simulation calls the statistics layer directly (no experiments), draws all its data at
once from a fixed seed, and runs 1,000 simulated experiments. A rate "within the binomial
99% interval of alpha" means between ``binom.interval(0.99, 1000, 0.05)`` / 1000, that is
[0.033, 0.068]: a correct test at alpha = 0.05 lands outside it in only 1% of seeds. The slow
resampling verifiers run with ``n_resamples=999`` (a randomized p-value with the +1 correction
is valid at any resample count), which keeps each of them near 1 ms per call. The measured
rates are printed (``-s``) and are in every assertion message.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats as ss

from pytest_crystallize import BASELINE_CONDITION, Hypothesis, stats
from pytest_crystallize._engine.hypotheses import Samples, evaluate
from pytest_crystallize._engine.results import ConditionMetrics

SIMULATIONS = 1_000
N = 12  # replicates per condition unless noted
ALPHA = 0.05
RHO = 0.8  # correlation of paired replicates (common random numbers)
_LOW, _HIGH = ss.binom.interval(0.99, SIMULATIONS, ALPHA)
LOW, HIGH = _LOW / SIMULATIONS, _HIGH / SIMULATIONS
RESAMPLES = 999


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


def outcomes(verifier: Any, baseline: Any, treated: Any, *, paired: bool) -> tuple[list[str], str]:
    """Each simulated experiment's outcome, and the test the verifier says it used. Paired
    rows share seeds (the replicates pair); independent rows have disjoint seeds."""
    n_b, n_t = baseline.shape[1], treated.shape[1]
    seeds_b = tuple(range(n_b))
    seeds_t = seeds_b if paired else tuple(range(n_b, n_b + n_t))
    found, test = [], ""
    for b, t in zip(baseline, treated, strict=True):
        result = verifier(as_samples(b, seeds_b), as_samples(t, seeds_t))
        found.append(result.outcome)
        test = result.test
    return found, test


def rate(found: list[str], outcome: str = "passed") -> float:
    return sum(o == outcome for o in found) / len(found)


def report(label: str, value: float, test: str = "") -> str:
    line = (
        f"{label}: {value:.4f} over {SIMULATIONS} simulated experiments"
        + (f" ({test})" if test else "")
        + f"; binomial 99% interval of alpha=0.05: [{LOW:.4f}, {HIGH:.4f}]"
    )
    print(line)
    return line


NULL_CASES = [
    pytest.param(stats.welch_t_test(), False, N, "Welch t-test", id="welch_t_test"),
    pytest.param(stats.paired_t_test(), True, N, "paired t-test", id="paired_t_test"),
    pytest.param(stats.mann_whitney(), False, N, "Mann-Whitney U", id="mann_whitney"),
    pytest.param(stats.wilcoxon(), True, N, "Wilcoxon signed-rank", id="wilcoxon"),
    pytest.param(
        stats.permutation_test(n_resamples=RESAMPLES),
        False,
        N,
        "independent permutation test",
        id="permutation_test-independent",
    ),
    pytest.param(
        stats.permutation_test(n_resamples=RESAMPLES),
        True,
        N,
        "paired permutation test",
        id="permutation_test-paired",
    ),
    pytest.param(
        stats.bootstrap_ci(n_resamples=RESAMPLES),
        False,
        N,
        "bootstrap (mean)",
        id="bootstrap_ci-mean-independent",
    ),
    pytest.param(
        stats.bootstrap_ci(n_resamples=RESAMPLES),
        True,
        N,
        "bootstrap (mean)",
        id="bootstrap_ci-mean-paired",
    ),
    pytest.param(
        stats.bootstrap_ci(statistic="median", n_resamples=RESAMPLES),
        False,
        N,
        "bootstrap (median)",
        id="bootstrap_ci-median-independent",
    ),
    pytest.param(stats.auto(), True, N, "auto: paired t-test", id="auto-paired"),
    pytest.param(stats.auto(), False, N, "auto: Welch t-test", id="auto-independent"),
    pytest.param(stats.auto(), True, 8, "auto: paired permutation test", id="auto-paired-n8"),
]


@pytest.mark.parametrize(("verifier", "paired", "n", "test"), NULL_CASES)
def test_under_a_true_null_the_false_failure_rate_is_within_the_binomial_interval_of_alpha(
    verifier: Any, paired: bool, n: int, test: str
) -> None:
    baseline, treated = draw(101, paired=paired, n=n)
    found, used = outcomes(verifier, baseline, treated, paired=paired)
    assert used == test  # the simulation exercised the test it meant to
    measured = rate(found)
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
    evaluated as one family: the share of experiments with any passing verdict."""
    z = np.random.default_rng(505).standard_normal((TREATMENTS + 1, SIMULATIONS, N))
    baseline = z[0]
    treated = RHO * baseline + np.sqrt(1 - RHO**2) * z[1:]
    names = [f"t{k}" for k in range(TREATMENTS)]
    seeds = tuple(range(N))
    hyp = Hypothesis(verifier=stats.paired_t_test(), metrics="m", name="h")
    any_adjusted = any_raw = 0
    for i in range(SIMULATIONS):
        metrics = {
            BASELINE_CONDITION: ConditionMetrics(
                BASELINE_CONDITION, {"m": baseline[i].tolist()}, seeds
            )
        }
        for k, name in enumerate(names):
            metrics[name] = ConditionMetrics(name, {"m": treated[k, i].tolist()}, seeds)
        (result,) = evaluate([hyp], metrics, BASELINE_CONDITION, names, "holm")
        assert result.family_size == TREATMENTS
        any_adjusted += any(result.adjusted[name] < ALPHA for name in names)
        any_raw += any(result.results[name].pvalue < ALPHA for name in names)
    family_wise, uncorrected = any_adjusted / SIMULATIONS, any_raw / SIMULATIONS
    message = report("Holm over 5 treatments, family-wise", family_wise)
    message += "; " + report("uncorrected over 5 treatments, family-wise", uncorrected)
    assert family_wise <= HIGH, message
    assert uncorrected > HIGH, message  # the correction is what keeps the family in bounds


def test_with_paired_replicates_auto_has_at_least_twice_the_power_of_welch() -> None:
    """rho = 0.8, n = 10, a true effect of 0.5 sd; the replicates pair by seed."""
    baseline, treated = draw(606, paired=True, n=10, shift=0.5)
    auto_found, auto_test = outcomes(stats.auto(), baseline, treated, paired=True)
    welch_found, _ = outcomes(stats.welch_t_test(), baseline, treated, paired=True)
    assert auto_test == "auto: paired t-test"
    auto_power, welch_power = rate(auto_found), rate(welch_found)
    message = (
        f"power at rho={RHO}, n=10, effect 0.5 sd over {SIMULATIONS} simulated experiments: "
        f"auto() {auto_power:.4f} ({auto_test}), welch_t_test() {welch_power:.4f}, "
        f"ratio {auto_power / welch_power:.2f}"
    )
    print(message)
    assert auto_power >= 2 * welch_power, message
