"""The statistics at their edges: degenerate data, planning, and the numbers messages show.

* Every built-in verifier gives a finite p-value or a named degenerate outcome on small,
  tied, constant and near-constant data, never an exception (a property test).
* ``replicates_needed`` (and ``stats.plan``) reach the asked power: statsmodels' power at the
  planned n is at least the target, at n - 1 it is not.
* A gate's message names the level of the interval it shows (TOST and non-inferiority decide
  on the (1 - 2 alpha) interval); a result without an estimate shows no "0 [0, 0]".
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import Any

import pytest
import statsmodels.stats.power as statsmodels_power  # in the test extra: the oracle
from _support import with_and_without_workers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_crystallize import (
    BASELINE_CONDITION,
    Experiment,
    RunResult,
    data_source,
    pipeline_step,
    stats,
    treatment,
)
from pytest_crystallize._engine.hypotheses import Hypothesis, Samples
from pytest_crystallize._engine.results import build_metrics
from pytest_crystallize._report.judge import judge
from pytest_crystallize.stats._power import t_test_power


def paired(b: list[float], t: list[float]) -> tuple[Samples, Samples]:
    """``{"m": values}`` per condition, with the seeds of paired replicates."""
    out = []
    for values in (b, t):
        s = Samples({"m": list(values)})
        s.seeds = tuple(range(len(values)))
        out.append(s)
    return out[0], out[1]


# --- Wilcoxon with one non-zero difference ----------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_wilcoxon_with_one_non_zero_difference_is_named_not_a_value_error(
    alternative: str,
) -> None:
    result = stats.wilcoxon(alternative=alternative)(*paired([1.0] * 6, [1, 1, 1, 1, 1, 2]))
    assert result.outcome == "inconclusive"
    assert result.reason == (
        "too few non-zero paired differences: 1 of 6; the signed-rank test drops zero "
        "differences and needs at least 2 non-zero ones"
    )
    assert result.pvalue == 1.0
    shown = result.as_dict()
    assert (shown["difference"], shown["ci_low"], shown["ci_high"], shown["mde"]) == (None,) * 4
    assert (shown["mean_baseline"], shown["mean_treatment"]) == (1.0, pytest.approx(7 / 6))


def test_wilcoxon_with_two_non_zero_differences_is_a_test() -> None:
    result = stats.wilcoxon()(*paired([1.0] * 6, [1, 1, 1, 1, 2, 3]))
    assert result.test == "Wilcoxon signed-rank"
    assert result.effect_size_name == "cliffs_delta"
    assert 0 < result.pvalue <= 1


# --- too few replicates: the means, no made-up interval ---------------------------------------


def test_too_few_replicates_give_no_difference_interval_or_detectable_change() -> None:
    result = stats.welch_t_test()(*paired([1.0], [2.0]))
    assert result.reason == ("too few replicates: n=1 vs 1; a test needs at least 2 per condition")
    shown = result.as_dict()
    assert (shown["difference"], shown["ci_low"], shown["ci_high"], shown["mde"]) == (None,) * 4
    assert (shown["mean_baseline"], shown["mean_treatment"]) == (1.0, 2.0)


def one_replicate_verdict() -> Any:
    experiment = (
        Experiment.builder("tiny")
        .datasource(constant())
        .add_step(record())
        .treatments([treatment("new", {})])
        .hypotheses([Hypothesis(verifier=stats.welch_t_test(), metrics="m", name="h")])
        .replicates(1)
        .build()
    )
    runs = [RunResult(BASELINE_CONDITION, 0, 1000, {"m": (1.0,)})]
    runs.append(RunResult("new", 0, 1000, {"m": (2.0,)}))
    (verdict,) = judge("tiny", experiment, runs, ["new"])
    return verdict


@data_source
def constant(ctx: Any) -> float:
    return 1.0


@pipeline_step()
def record(value: float, ctx: Any) -> tuple[float, dict[str, float]]:
    return value, {"m": value}


def test_a_verdict_on_too_few_replicates_says_the_means_and_no_difference_0_0_0() -> None:
    verdict = one_replicate_verdict()
    assert verdict.outcome == "inconclusive"
    assert (verdict.difference, verdict.ci_low, verdict.ci_high) == (None, None, None)
    assert verdict.message.splitlines() == [
        "hypothesis 'h', treatment 'new' vs baseline on 'm': Welch t-test: too few "
        "replicates: n=1 vs 1; a test needs at least 2 per condition",
        "  p=1, alpha=0.05, n=1 vs 1, means 1 vs 2",
        "  note: degenerate input: too few replicates: n=1 vs 1; a test needs at least 2 per "
        "condition",
    ]


TINY = """\
from pytest_crystallize import Experiment, Hypothesis, data_source, pipeline_step, stats
from pytest_crystallize import treatment


@data_source
def one(ctx):
    return 1.0


@pipeline_step()
def shift(value, ctx, *, delta=0.0):
    return value + delta, {"m": value + delta}


tiny = (
    Experiment.builder("tiny")
    .datasource(one())
    .add_step(shift())
    .treatments([treatment("new", {"delta": 1.0})])
    .hypotheses([Hypothesis(verifier=stats.welch_t_test(), metrics="m", name="h")])
    .replicates(1)
    .build()
)
"""


@with_and_without_workers
def test_one_replicate_in_a_session_shows_the_means_and_no_zero_interval(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(experiment_tiny=TINY)
    result = ourtester.runpytest("--crystallize", "-rA", *dist)
    result.stdout.fnmatch_lines(["  p=1, alpha=0.05, n=1 vs 1, means 1 vs 2"])
    assert "difference 0 [[]0, 0]" not in result.stdout.str()
    assert "difference 0 [0, 0]" not in result.stdout.str()


# --- gates: the level of the interval shown ---------------------------------------------------

BASE = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 99.8, 100.0]
SLOWER = [97.0, 102.0, 96.5, 101.0, 98.0, 101.7, 96.3, 99.5]


@pytest.mark.parametrize(
    ("alpha", "level", "interval"), [(0.05, "90%", 0.90), (0.1, "80%", None), (0.025, "95%", 0.95)]
)
def test_non_inferiority_names_the_level_of_the_interval_it_decides_on(
    alpha: float, level: str, interval: float | None
) -> None:
    result = stats.non_inferior(margin=0.02, relative=True, alpha=alpha)(*paired(BASE, SLOWER))
    assert f"{level} CI of the change [" in result.reason, result.reason
    if interval is not None:  # the interval in the message is the two-sided one at that level
        low, high = result.confidence_interval(interval)
        mean_b = sum(BASE) / len(BASE)
        shown = f"[{100 * low / mean_b:+.1f}%, {100 * high / mean_b:+.1f}%]"
        assert result.reason.startswith(
            f"inconclusive: {level} CI of the change {shown} crosses the margin -2.0%; "
        )


def test_tost_says_90_percent_and_shows_the_90_percent_interval() -> None:
    result = stats.equivalent(margin=5.0)(*paired(BASE, SLOWER))
    low, high = result.confidence_interval(0.90)
    assert result.outcome == "passed"
    assert result.reason == (
        f"90% CI of the change [{low:+.4g}, {high:+.4g}] clears the margin +-5"
    )


def test_lower_is_better_speaks_of_the_change_in_the_metric_s_direction() -> None:
    result = stats.non_inferior(margin=0.5, higher_is_better=False)(
        *paired([1.0, 2.0, 3.0, 4.0], [1.1, 2.2, 2.9, 4.3])
    )
    low, high = result.confidence_interval(0.90)
    assert result.difference == pytest.approx(0.125)
    assert result.outcome == "passed"
    assert result.reason == f"90% CI of the change [{low:+.4g}, {high:+.4g}] clears the margin +0.5"


# --- planning reaches the asked power ---------------------------------------------------------

GRID = list(
    itertools.product(
        [0.01, 0.05], [0.8, 0.9], [True, False], [0.3, 0.4, 0.5, 0.7, 0.9, 1.0, 1.2, 1.5]
    )
)


@pytest.mark.parametrize(("alpha", "power", "is_paired", "effect"), GRID)
def test_replicates_needed_reach_statsmodels_power_and_one_fewer_does_not(
    alpha: float, power: float, is_paired: bool, effect: float
) -> None:
    n = stats.replicates_needed(1.0, effect, paired=is_paired, alpha=alpha, power=power)
    model = statsmodels_power.TTestPower() if is_paired else statsmodels_power.TTestIndPower()

    def reached(at: int) -> float:
        return float(model.power(effect, at, alpha))

    assert reached(n) >= power, (n, reached(n))
    assert n == 2 or reached(n - 1) < power, (n, reached(n - 1))
    assert t_test_power(effect, n, paired=is_paired, alpha=alpha) == pytest.approx(
        reached(n), abs=1e-9
    )
    solved = model.solve_power(effect_size=effect, alpha=alpha, power=power)
    assert n == max(2, math.ceil(solved - 1e-6)), (n, solved)


def test_the_cells_that_were_one_short_now_reach_the_power() -> None:
    # alpha 0.01: the normal-quantile formula stopped at n with power 0.757-0.7999
    model = statsmodels_power.TTestPower()
    for effect in (0.5, 1.0, 1.5):
        n = stats.replicates_needed(1.0, effect, paired=True, alpha=0.01)
        assert model.power(effect, n, 0.01) >= 0.8


def test_plan_uses_the_asked_power_and_says_it() -> None:
    base = [10.0, 11.0, 9.5, 10.5, 10.2, 9.8, 10.1, 9.9]
    treated = [10.4, 11.1, 10.2, 10.4, 10.9, 10.0, 10.6, 10.1]
    runs = [
        RunResult(c, i, 1000 + i, {"m": (v,)})
        for c, values in ((BASELINE_CONDITION, base), ("new", treated))
        for i, v in enumerate(values)
    ]
    metrics = build_metrics(runs, [BASELINE_CONDITION, "new"], len(base))
    pilot = SimpleNamespace(
        metrics=SimpleNamespace(
            baseline=metrics[BASELINE_CONDITION], treatments={"new": metrics["new"]}
        )
    )
    (planned,) = stats.plan(pilot, "m", 0.3, power=0.9, alpha=0.01)
    sd = statistics_sd([t - b for b, t in zip(base, treated, strict=True)])
    n = planned.replicates_needed
    model = statsmodels_power.TTestPower()
    assert model.power(0.3 / sd, n, 0.01) >= 0.9
    assert model.power(0.3 / sd, n - 1, 0.01) < 0.9
    assert planned.power == 0.9
    assert f"{n} replicates to detect +0.3 with 90% power" in str(planned)


def statistics_sd(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


# --- every built-in verifier on awkward data --------------------------------------------------

VERIFIERS = [
    stats.welch_t_test(),
    stats.paired_t_test(),
    stats.mann_whitney(),
    stats.wilcoxon(),
    stats.permutation_test(n_resamples=199),
    stats.permutation_test(paired=False, n_resamples=199),
    stats.bootstrap_ci(n_resamples=199),
    stats.bootstrap_ci(statistic="median", paired=False, n_resamples=199),
    stats.auto(),
    stats.non_inferior(margin=0.5),
    stats.equivalent(margin=0.5),
]
NAMED = ("too few", "no variance", "deterministic difference", "invalid data")

# Small values from a few levels (ties and constants are likely), optionally nudged by
# rounding-size amounts (near-constant data).
LEVEL = st.sampled_from([0.0, 1.0, 1.5, 2.0, -3.0, 1e6])
NUDGE = st.sampled_from([0.0, 0.0, 1e-15, -1e-12, 0.25])
VALUE = st.builds(lambda level, nudge: level + nudge, LEVEL, NUDGE)


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    data=st.integers(min_value=1, max_value=7).flatmap(
        lambda n: st.tuples(
            st.lists(VALUE, min_size=n, max_size=n), st.lists(VALUE, min_size=n, max_size=n)
        )
    )
)
def test_every_built_in_gives_a_finite_p_value_or_a_named_outcome(
    data: tuple[list[float], list[float]],
) -> None:
    b, t = data
    for made in VERIFIERS:
        result = made(*paired(b, t))
        assert result.outcome in ("passed", "failed", "inconclusive"), (made, b, t)
        assert 0 <= result.pvalue <= 1, (made, b, t, result)  # so finite too
        if result.effect_size_name == "none":
            assert result.reason.startswith(NAMED), (made, b, t, result.reason)
        for key, value in result.as_dict().items():
            assert not isinstance(value, float) or math.isfinite(value), (made, key, value)
