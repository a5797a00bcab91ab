"""Proof by simulation (issue 14): group-sequential looks keep alpha, cost little power and
save replicates; naive peeking does not keep alpha.

Each simulated experiment compares a treatment with a baseline by Welch's t-test at K = 4
looks, after 12, 24, 36 and 48 replicates per condition (information fractions 1/4 .. 1), on
normal noise and on heavy-tailed t(3) noise (scaled to unit variance), for the two kinds of
hypothesis the library judges differently: two-sided (``welch_t_test()``) and one-sided
(``welch_t_test(alternative="greater")``). The nominal levels and the futility thresholds
are the library's own, from ``look_plan`` (what ``judge_look`` uses): at look k the test's
own p-value crosses when it is at most ``levels[k]``; with futility, an interim look stops
when it is above ``futility[k]`` (the predictive power of the last look is below 2.5%: an
estimate pointing the wrong way, or too weakly the right way late in the design). Welch's
statistics of all looks are computed at once with numpy from a fixed seed, over 20,000
simulated experiments per case (``test_welch_here_is_scipys_welch`` checks them).

"Within the binomial 99% interval of alpha" means at most ``binom.interval(0.99, 20000,
0.05)[1] / 20000`` (0.054): a design that keeps alpha exceeds it in only 0.5% of seeds. The
design effect gives each side's fixed design (Welch at 48 replicates, alpha = 0.05, the
same side) 80% power on normal noise. The
table of every case is printed (``-s``) and is in each assertion message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pytest
from scipy import stats as ss
from scipy.optimize import brentq

from pytest_crystallize import Hypothesis, stats
from pytest_crystallize._report.stagewise import look_plan
from pytest_crystallize.stats._power import t_test_power
from pytest_crystallize.stats._sequential import max_sample_inflation

SIMULATIONS = 20_000
ALPHA = 0.05
LOOKS = (12, 24, 36, 48)
FRACTIONS = tuple(n / LOOKS[-1] for n in LOOKS)
HIGH = ss.binom.interval(0.99, SIMULATIONS, ALPHA)[1] / SIMULATIONS
NOISES = ("normal", "t(3)")
DESIGNS = ("obrien-fleming", "pocock")
SIDES = ("two-sided", "greater")
SEEDS = {"normal": 1401, "t(3)": 1402}
NAIVE = "naive peeking"


def draw(seed: int, noise: str, shift: float) -> tuple[Any, Any]:
    """Baseline and treatment rows of 48 replicates, unit variance, the treatment shifted."""
    rng = np.random.default_rng(seed)
    shape = (2, SIMULATIONS, LOOKS[-1])
    z = rng.standard_normal(shape) if noise == "normal" else rng.standard_t(3, shape) / np.sqrt(3)
    return z[0], z[1] + shift


def welch(
    baseline: Any, treated: Any, looks: tuple[int, ...] = LOOKS, side: str = "two-sided"
) -> tuple[Any, Any]:
    """Welch's t statistic and p-value (two-sided, or one-sided ``"greater"``) of every row
    at every look (rows x looks)."""
    statistics, pvalues = [], []
    for n in looks:
        var_b = baseline[:, :n].var(axis=1, ddof=1) / n
        var_t = treated[:, :n].var(axis=1, ddof=1) / n
        se2 = var_b + var_t
        t = (treated[:, :n].mean(axis=1) - baseline[:, :n].mean(axis=1)) / np.sqrt(se2)
        df = se2**2 / ((var_b**2 + var_t**2) / (n - 1))
        statistics.append(t)
        pvalues.append(2.0 * ss.t.sf(np.abs(t), df) if side == "two-sided" else ss.t.sf(t, df))
    return np.stack(statistics, axis=1), np.stack(pvalues, axis=1)


def run(
    t: Any,
    p: Any,
    levels: tuple[float, ...],
    futility: tuple[float, ...] | None,
    side: str = "greater",
) -> tuple[float, float, float]:
    """The rate of crossing (either way), the rate of crossing upward (power), and the mean
    replicates per condition used over the maximum, with the ``futility`` thresholds (an
    interim look stops when the one-sided p-value in the better direction, higher, is above
    its threshold: a two-sided test's from its p-value and the sign of t) or without
    futility (None)."""
    crosses = p <= np.asarray(levels)
    stops = crosses.copy()
    if futility is not None:
        one_sided = np.where(t > 0, p / 2, 1 - p / 2) if side == "two-sided" else p
        stops[:, :-1] |= one_sided[:, :-1] > np.asarray(futility[:-1])
    stops[:, -1] = True
    first = stops.argmax(axis=1)
    rows = np.arange(len(p))
    crossed = crosses[rows, first]
    upward = crossed & (t[rows, first] > 0)
    used = np.asarray(LOOKS)[first].mean() / LOOKS[-1]
    return float(crossed.mean()), float(upward.mean()), float(used)


def design_effect(side: str) -> float:
    """The difference (in sd) that gives Welch's fixed design on ``side`` at 48 replicates
    80% power (one-sided at alpha: two-sided at 2 alpha, whose other tail is negligible)."""
    level = ALPHA if side == "two-sided" else 2 * ALPHA

    def power(d: float) -> float:
        return t_test_power(d, 48, paired=False, alpha=level) - 0.8

    return float(brentq(power, 0.1, 1.5))


def plan_of(kind: str, side: str) -> tuple[tuple[float, ...], tuple[float, ...] | None, Any]:
    """The library's levels, futility thresholds and bounds of ``welch_t_test`` on ``side``."""
    if kind == NAIVE:
        return (ALPHA,) * len(LOOKS), None, None
    plan = look_plan(Hypothesis(stats.welch_t_test(alternative=side), "m"), FRACTIONS, kind)
    return plan.levels, plan.futility, plan.bounds


@lru_cache(maxsize=1)
def table() -> tuple[dict[tuple[str, str, str], dict[str, float]], str]:
    """Every case's rates, and the table of them as text (printed once per process)."""
    effects = {side: design_effect(side) for side in SIDES}
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for noise in NOISES:
        null_data = draw(SEEDS[noise], noise, 0.0)
        for side in SIDES:
            shifted = draw(SEEDS[noise] + 10, noise, effects[side])
            null = welch(*null_data, side=side)
            alternative = welch(*shifted, side=side)
            fixed_t, fixed_p = alternative[0][:, -1], alternative[1][:, -1]
            fixed_power = float(((fixed_p <= ALPHA) & (fixed_t > 0)).mean())
            for kind in (*DESIGNS, NAIVE):
                levels, futility, bounds = plan_of(kind, side)
                row = {"fixed power": fixed_power}
                row["alpha"], _, _ = run(*null, levels, None)
                _, row["power"], row["E[n]/max, effect"] = run(*alternative, levels, None)
                if futility is not None:
                    row["alpha, futility"], _, row["E[n]/max, null+futility"] = run(
                        *null, levels, futility, side
                    )
                    _, row["power, futility"], row["E[n]/max, effect+futility"] = run(
                        *alternative, levels, futility, side
                    )
                    two = 1 if side == "two-sided" else 2  # one-sided bounds spend 2 alpha
                    inflation = max_sample_inflation(bounds, FRACTIONS, two * ALPHA)
                    n_fixed = round(LOOKS[-1] / inflation)  # the fixed design of equal power
                    t, p = welch(*shifted, looks=(n_fixed,), side=side)
                    row |= {"inflation": inflation, "fixed n": n_fixed}
                    row["fixed power at n"] = float(((p[:, 0] <= ALPHA) & (t[:, 0] > 0)).mean())
                rows[(noise, side, kind)] = row
    columns = list(rows[(NOISES[0], SIDES[0], DESIGNS[0])])
    lines = [
        f"{SIMULATIONS} simulated experiments per case; looks at {LOOKS} replicates; design "
        f"effects {', '.join(f'{s} {d:.4f} sd' for s, d in effects.items())}; "
        f"binomial 99% upper bound of alpha=0.05: {HIGH:.4f}",
        " | ".join(["noise", "side", "design", *columns]),
    ]
    for (noise, side, kind), row in rows.items():
        cells = [f"{row[c]:.4g}" if c in row else "-" for c in columns]
        lines.append(" | ".join([noise, side, kind, *cells]))
    text = "\n".join(lines)
    print(text)
    return rows, text


def test_welch_here_is_scipys_welch() -> None:
    baseline, treated = draw(7, "t(3)", 0.3)
    for side in SIDES:
        t, p = welch(baseline[:5], treated[:5], looks=(12, 48), side=side)
        for row in range(5):
            for look, n in enumerate((12, 48)):
                expected = ss.ttest_ind(
                    treated[row, :n], baseline[row, :n], equal_var=False, alternative=side
                )
                assert t[row, look] == pytest.approx(expected.statistic, rel=1e-9)
                assert p[row, look] == pytest.approx(expected.pvalue, rel=1e-9)


def cases(noise: str) -> list[tuple[str, str, str]]:
    return [(noise, side, kind) for side in SIDES for kind in DESIGNS]


@pytest.mark.parametrize("noise", NOISES)
def test_designs_keep_alpha_and_naive_peeking_does_not(noise: str) -> None:
    rows, text = table()
    for case in cases(noise):
        assert rows[case]["alpha"] <= HIGH, f"{case}\n{text}"
        assert rows[case]["alpha, futility"] <= HIGH, f"{case}\n{text}"
    # The same check fails for Welch at 0.05 at every look: the check can fail.
    for side in SIDES:
        assert rows[(noise, side, NAIVE)]["alpha"] > HIGH, f"{NAIVE}, {side}, {noise}\n{text}"


@pytest.mark.parametrize("noise", NOISES)
def test_power_matches_the_fixed_design_of_equal_maximum_or_of_the_inflated_size(
    noise: str,
) -> None:
    rows, text = table()
    for side in SIDES:
        obf = rows[(noise, side, "obrien-fleming")]
        for column in ("power", "power, futility"):
            gap = obf["fixed power"] - obf[column]
            assert abs(gap) <= 0.03, f"obrien-fleming, {side}, {column}, {noise}\n{text}"
    # Pocock's even spending costs power at an equal maximum; at its maximum sample inflation
    # it matches the fixed design: 48 replicates in the design do what 48 / R do fixed.
    for case in cases(noise):
        row = rows[case]
        assert abs(row["power"] - row["fixed power at n"]) <= 0.03, f"{case}\n{text}"


@pytest.mark.parametrize("noise", NOISES)
def test_designs_save_replicates_under_the_effect(noise: str) -> None:
    rows, text = table()
    for case in cases(noise):
        assert rows[case]["E[n]/max, effect"] <= 0.90, f"{case}\n{text}"
        assert rows[case]["E[n]/max, effect+futility"] <= 0.90, f"{case}\n{text}"


@pytest.mark.parametrize("noise", NOISES)
def test_futility_saves_replicates_under_no_effect(noise: str) -> None:
    """Futility stops most no-change runs early: at most 0.65x the maximum on average, for
    one-sided tests in their direction and for two-sided ones in their metric's better
    direction (higher here), while keeping power (the test above)."""
    rows, text = table()
    for case in cases(noise):
        assert rows[case]["E[n]/max, null+futility"] <= 0.65, f"{case}\n{text}"
