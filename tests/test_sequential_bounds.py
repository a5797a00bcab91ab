"""Group-sequential boundaries and the inference after stopping (issue 14): published
constants, the alpha each design spends, and every bad argument's message.

Published constants: Pocock (1977) and O'Brien & Fleming (1979) two-sided alpha = 0.05
bounds; the maximum sample inflation factors are Jennison & Turnbull (2000), Tables 2.3 and
2.4 (Pocock, O'Brien-Fleming; K = 5, alpha = 0.05; 1.207 and 1.026 at 90% power, 1.229 and
1.028 at 80%).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from scipy import stats as ss

from pytest_crystallize.stats._sequential import (
    classic_bounds,
    efficacy_bounds,
    futility_levels,
    holm_at_look,
    max_sample_inflation,
    nominal_levels,
    spent,
    stagewise_interval,
    stagewise_pvalue,
)
from pytest_crystallize.stats._sequential_bounds import box, exit_upper
from pytest_crystallize.stats._sequential_inference import upward

Z975 = float(ss.norm.ppf(0.975))
FOUR = (0.25, 0.5, 0.75, 1.0)
FIVE = (0.2, 0.4, 0.6, 0.8, 1.0)


def crossing_rate(bounds: Any, fractions: Any, drift: float = 0.0, seed: int = 5) -> float:
    """P(|Z_k| >= c_k at some look) by simulating the Brownian motion of the look statistics."""
    t = np.asarray(fractions)
    steps = np.diff(np.concatenate([[0.0], t]))
    rng = np.random.default_rng(seed)
    motion = np.cumsum(rng.standard_normal((200_000, len(t))) * np.sqrt(steps) + drift * steps, 1)
    return float((np.abs(motion / np.sqrt(t)) >= np.asarray(bounds)).any(axis=1).mean())


def test_spending_functions_spend_all_of_alpha_at_the_end_and_follow_their_formulas() -> None:
    for kind in ("obrien-fleming", "pocock"):
        assert spent(kind, 1.0, 0.05) == pytest.approx(0.05, rel=1e-12)
        assert spent(kind, 0.25, 0.05) < spent(kind, 0.5, 0.05) < 0.05
    assert spent("obrien-fleming", 0.25, 0.05) == pytest.approx(2 * ss.norm.sf(Z975 / 0.5))
    assert spent("pocock", 0.5, 0.05) == pytest.approx(0.05 * math.log(1 + (math.e - 1) / 2))
    assert spent("obrien-fleming", 0.25, 0.05) < spent("pocock", 0.25, 0.05)  # strict early


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: spent("linear", 0.5, 0.05),
            "spent(kind='linear'): unknown spending function; "
            "choose one of ('obrien-fleming', 'pocock')",
        ),
        (
            lambda: spent("pocock", 0.0, 0.05),
            "spent(t=0.0): the information fraction must be in (0, 1]",
        ),
        (
            lambda: spent("pocock", 0.5, 5),
            "spent(alpha=5): alpha must be a number strictly between 0 and 1, e.g. 0.05",
        ),
    ],
)
def test_spent_names_the_bad_argument(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_one_look_is_the_fixed_design() -> None:
    assert efficacy_bounds([1.0]) == pytest.approx((Z975,))
    assert classic_bounds(1, kind="obrien-fleming") == pytest.approx((Z975,), abs=1e-5)
    assert nominal_levels([Z975]) == pytest.approx((0.05,))
    assert max_sample_inflation([Z975], [1.0]) == pytest.approx(1.0, abs=1e-5)


def test_spending_bounds_spend_alpha_and_are_deterministic() -> None:
    obf = efficacy_bounds(FOUR)
    assert obf[0] == pytest.approx(Z975 / 0.5)  # the first look spends exactly spent(t_1)
    assert obf[0] > obf[1] > obf[2] > obf[3] > Z975
    assert efficacy_bounds((0.001, 1.0)) == pytest.approx((math.inf, Z975))  # spends ~0: never
    pocock = efficacy_bounds(list(FOUR), alpha=0.05, spending="pocock")
    assert max(pocock) - min(pocock) < 0.05  # nearly constant, as Pocock's design
    for bounds in (obf, pocock):
        assert crossing_rate(bounds, FOUR) == pytest.approx(0.05, abs=0.002)
    # Each look's exit probability is its share of alpha (computed in the rectangle form).
    inner = box([-c for c in obf[:2]], list(obf[:2]), FOUR[:2])
    both = box([-c for c in obf[:3]], list(obf[:3]), FOUR[:3])
    share = spent("obrien-fleming", 0.75, 0.05) - spent("obrien-fleming", 0.5, 0.05)
    assert inner - both == pytest.approx(share, abs=2e-5)
    # The quasi-Monte Carlo integration has a fixed random state: the same number each time.
    assert box([-2.0] * 4, [2.0] * 4, FOUR, 0.3) == box([-2.0] * 4, [2.0] * 4, FOUR, 0.3)


@pytest.mark.parametrize(
    ("kind", "looks", "published"),
    [
        ("pocock", 5, (2.413,) * 5),
        ("obrien-fleming", 5, (4.562, 3.226, 2.634, 2.281, 2.040)),
        ("obrien-fleming", 2, (2.797, 1.977)),
    ],
)
def test_classic_bounds_reproduce_the_published_constants(
    kind: str, looks: int, published: tuple[float, ...]
) -> None:
    assert classic_bounds(looks, 0.05, kind) == pytest.approx(published, abs=0.002)


@pytest.mark.parametrize(
    ("kind", "power", "published"),
    [
        ("pocock", 0.9, 1.207),
        ("obrien-fleming", 0.9, 1.026),
        ("pocock", 0.8, 1.229),
        ("obrien-fleming", 0.8, 1.028),
    ],
)
def test_max_sample_inflation_reproduces_jennison_and_turnbull(
    kind: str, power: float, published: float
) -> None:
    bounds = classic_bounds(5, kind=kind)
    assert max_sample_inflation(bounds, FIVE, 0.05, power) == pytest.approx(published, abs=0.003)


def test_nominal_levels_and_holm_at_one_look() -> None:
    assert nominal_levels((2.413, 2.0)) == pytest.approx((0.01582, 0.04550), abs=1e-5)
    assert nominal_levels((math.inf,)) == (0.0,)
    assert holm_at_look([0.01, 0.04, 0.03], 0.05) == [True, False, False]  # 0.03 > 0.05 / 2
    assert holm_at_look([0.04, 0.001, 0.02], 0.05) == [True, True, True]
    assert holm_at_look([0.2, 0.001, 0.01], 0.01) == [False, True, False]  # steps down, stops
    assert holm_at_look([], 0.05) == []


@pytest.mark.parametrize("two_sided", [True, False])
@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_futility_levels_are_where_the_predictive_power_falls_below_its_floor(
    two_sided: bool, spending: str
) -> None:
    """At each interim look's threshold, the chance of crossing the last bound, averaged
    over the drifts the data allow (flat prior), is the floor: checked by drawing the
    drift from its posterior and the rest of the path, independently of the formula."""
    bounds = efficacy_bounds(FOUR, 0.05 if two_sided else 0.10, spending)
    levels = futility_levels(bounds, FOUR, two_sided=two_sided, power=0.025)
    assert levels[-1] == 1.0  # the last look decides everything: never futile
    rng = np.random.default_rng(11)
    for t, level in zip(FOUR[:-1], levels[:-1], strict=True):
        if level == 1.0:  # two-sided, no |z| is futile this early
            continue
        tail = level / 2 if two_sided else level
        z = float(ss.norm.isf(tail))
        drift = rng.normal(z / math.sqrt(t), 1 / math.sqrt(t), 400_000)  # posterior of eta
        final = z * math.sqrt(t) + rng.normal(drift * (1 - t), math.sqrt(1 - t))
        assert float((final >= bounds[-1]).mean()) == pytest.approx(0.025, abs=0.002)
    if not two_sided:  # early: only an estimate clearly pointing the wrong way (p > 0.5)
        assert levels[0] > 0.5
    assert all(0 < level <= 1 for level in levels)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: efficacy_bounds([0.5, 0.4, 1.0]),
            "efficacy_bounds(fractions=[0.5, 0.4, 1.0]): "
            "the information fractions must increase strictly within (0, 1]; 0.4 follows 0.5",
        ),
        (lambda: efficacy_bounds([0.0, 1.0]), "0.0 follows 0.0"),
        (
            lambda: efficacy_bounds([0.5, 0.9]),
            "efficacy_bounds(fractions=[0.5, 0.9]): the last "
            "look is the full information, so fractions must end at 1.0, not 0.9",
        ),
        (lambda: efficacy_bounds([]), "efficacy_bounds(fractions=[]): give at least one look"),
        (
            lambda: efficacy_bounds("ab"),
            "efficacy_bounds(fractions='ab'): fractions must be a sequence of numbers",
        ),
        (lambda: efficacy_bounds(FOUR, alpha=1.5), "efficacy_bounds(alpha=1.5): alpha must be"),
        (
            lambda: efficacy_bounds(FOUR, spending="pocok"),
            "efficacy_bounds(spending='pocok'): "
            "unknown spending function; choose one of ('obrien-fleming', 'pocock')",
        ),
        (
            lambda: classic_bounds(0),
            "classic_bounds(looks=0): the number of looks must be an integer >= 1",
        ),
        (
            lambda: classic_bounds(3, kind="haybittle"),
            "classic_bounds(kind='haybittle'): "
            "unknown design; choose one of ('pocock', 'obrien-fleming')",
        ),
        (lambda: classic_bounds(3, alpha=0), "classic_bounds(alpha=0): alpha must be"),
        (
            lambda: max_sample_inflation([2.0], FOUR),
            "max_sample_inflation(bounds=[2.0]): 1 bounds for 4 fractions; give one bound per look",
        ),
        (
            lambda: max_sample_inflation([2.0], [1.0], power=1.0),
            "max_sample_inflation("
            "power=1.0): power must be a number strictly between 0 and 1, e.g. 0.8",
        ),
        (
            lambda: max_sample_inflation([2.0], [1.0], 0.05, 0.04),
            "max_sample_inflation(power=0.04): power must exceed alpha=0.05",
        ),
        (
            lambda: nominal_levels([2.0, -1.0]),
            "nominal_levels(bounds=[2.0, -1.0]): bounds must be positive z values",
        ),
        (lambda: nominal_levels(None), "nominal_levels(bounds=None): bounds must be a sequence"),
        (
            lambda: holm_at_look([0.2, 1.5], 0.05),
            "holm_at_look(pvalues=[0.2, 1.5]): 1.5 is not a p-value in [0, 1]",
        ),
        (lambda: holm_at_look([0.2], -0.1), "holm_at_look(level=-0.1): level must be"),
        (
            lambda: futility_levels([2.0], [1.0], two_sided=True, power=1.5),
            "futility_levels(power=1.5): power must be a number strictly between 0 and 1, "
            "e.g. 0.025",
        ),
        (
            lambda: futility_levels([2.0], [0.5, 1.0], two_sided=False),
            "futility_levels(bounds=[2.0]): 1 bounds for 2 fractions; give one bound per look",
        ),
    ],
)
def test_bounds_name_the_bad_argument(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_with_one_look_inference_is_the_fixed_designs() -> None:
    for z in (-2.5, 0.3, 1.0, 3.1):
        assert stagewise_pvalue([Z975], [1.0], 1, z) == pytest.approx(2 * ss.norm.sf(abs(z)))
        interval = stagewise_interval([Z975], [1.0], 1, z)
        assert interval == pytest.approx((z - Z975, z + Z975), abs=1e-5)
    assert stagewise_interval([Z975], [1.0], 1, 1.0, level=0.9) == pytest.approx(
        (1.0 - ss.norm.ppf(0.95), 1.0 + ss.norm.ppf(0.95)), abs=1e-5
    )


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_after_an_early_crossing_inference_accounts_for_the_looks(spending: str) -> None:
    bounds = efficacy_bounds(FOUR, spending=spending)
    look, t = 2, FOUR[1]
    z = bounds[1] + 0.3  # crossed at look 2
    naive_p = 2 * ss.norm.sf(z)
    p = stagewise_pvalue(bounds, FOUR, look, z)
    assert naive_p <= p <= 0.05
    assert stagewise_pvalue(bounds, FOUR, look, -z) == pytest.approx(p, rel=1e-6)
    low, high = stagewise_interval(bounds, FOUR, look, z)
    naive_low, naive_high = (z - Z975) / math.sqrt(t), (z + Z975) / math.sqrt(t)
    assert 0.0 < low <= naive_low + 1e-6  # excludes 0, as p < 0.05; toward zero
    assert (low + high) / 2 < (naive_low + naive_high) / 2  # shifted toward zero
    if spending == "pocock":
        assert high - low > naive_high - naive_low  # and wider
    assert stagewise_interval(bounds, FOUR, look, -z) == pytest.approx((-high, -low), abs=1e-5)
    # Crossing at look 2 is more extreme than any outcome at look 3, however large.
    assert p < stagewise_pvalue(bounds, FOUR, 3, 10.0)
    # At the stopping look, larger z is more extreme; the interval moves up with z.
    ps = [stagewise_pvalue(bounds, FOUR, look, z + d) for d in (0.0, 0.5, 1.0)]
    assert ps[0] > ps[1] > ps[2]
    (low_0, high_0), (low_1, high_1) = (
        stagewise_interval(bounds, FOUR, look, z + d) for d in (0, 0.5)
    )
    assert low_0 < low_1
    assert high_0 < high_1


def test_at_the_last_look_without_crossing_the_p_value_exceeds_alpha_and_the_ci_covers_0() -> None:
    bounds = efficacy_bounds(FOUR)
    assert 0.05 < stagewise_pvalue(bounds, FOUR, 4, 1.5) < stagewise_pvalue(bounds, FOUR, 4, 1.0)
    low, high = stagewise_interval(bounds, FOUR, 4, 1.5)
    assert low < 0.0 < high


def test_intervals_cover_the_drift_at_their_level() -> None:
    # 400 simulated designs at drift 2.5. The 90% interval misses the drift below exactly when
    # the stage-wise tail probability at the drift is under 5% (it increases with the drift),
    # so coverage is counted from that (one integral per design) and checked on 20 intervals
    # (10 misses, 10 hits).
    # It lands within the binomial 99% interval of 90% (2,000 designs of another seed, as
    # intervals: 5.2% miss below, 5.1% above).
    bounds, drift, fractions = efficacy_bounds((0.5, 1.0), spending="pocock"), 2.5, (0.5, 1.0)
    steps = np.random.default_rng(11).standard_normal((400, 2)) * math.sqrt(0.5) + drift * 0.5
    z = np.cumsum(steps, axis=1) / np.sqrt(fractions)
    looks = np.where(np.abs(z[:, 0]) >= bounds[0], 1, 2)
    observed = z[np.arange(400), looks - 1]
    tails = [
        upward(bounds, fractions, int(k), float(x), drift)
        for k, x in zip(looks, observed, strict=True)
    ]
    covered = [0.05 <= tail <= 0.95 for tail in tails]
    low_rate, high_rate = ss.binom.interval(0.99, 400, 0.9)
    assert low_rate <= sum(covered) <= high_rate, sum(covered)
    misses = [i for i, inside in enumerate(covered) if not inside]
    for i in misses[:10] + [i for i in range(20) if covered[i]][:10]:
        low, high = stagewise_interval(bounds, fractions, int(looks[i]), float(observed[i]), 0.9)
        assert (low <= drift <= high) == covered[i], (looks[i], observed[i], low, high)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: stagewise_pvalue(efficacy_bounds(FOUR), FOUR, 5, 1.0),
            "stagewise_pvalue(look=5): look is 1-based and must be 1..4",
        ),
        (
            lambda: stagewise_pvalue([2.0], [1.0], 1, math.nan),
            "stagewise_pvalue(z=nan): z must be the finite z statistic",
        ),
        (
            lambda: stagewise_interval([2.0], [1.0], 1, 1.0, level=95),
            "stagewise_interval("
            "level=95): level must be a number strictly between 0 and 1, e.g. 0.95",
        ),
        (
            lambda: stagewise_interval([2.0, 1.9], [1.0], 1, 1.0),
            "stagewise_interval(bounds=[2.0, 1.9]): 2 bounds for 1 fractions",
        ),
        (
            lambda: stagewise_pvalue([2.0, 1.9], [0.6, 0.5], 1, 1.0),
            "stagewise_pvalue(fractions="
            "[0.6, 0.5]): the information fractions must increase strictly",
        ),
    ],
)
def test_stagewise_inference_names_the_bad_argument(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
@pytest.mark.parametrize("fractions", [FOUR, (0.1, 0.3, 0.35, 0.8, 1.0)])
def test_the_stagewise_tail_agrees_with_the_joint_normal(
    spending: str, fractions: tuple[float, ...]
) -> None:
    # The recursive integration behind inference against the multivariate normal behind
    # the bounds (quasi-Monte Carlo, good to about 1e-5), a look that cannot stop included.
    bounds = (math.inf, *efficacy_bounds(fractions, spending=spending)[1:])
    for look in range(1, len(fractions) + 1):
        for z in (-1.0, 0.5, 2.1, 3.0):
            for eta in (-1.0, 0.0, 1.5, 3.5):
                joint = sum(
                    exit_upper(bounds, fractions[:j], bounds[j - 1], eta) for j in range(1, look)
                )
                joint += exit_upper(bounds, fractions[:look], z, eta)
                assert upward(bounds, fractions, look, z, eta) == pytest.approx(joint, abs=3e-5)
