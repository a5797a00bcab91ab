"""Non-regression gates with three outcomes: ``non_inferior`` and ``equivalent`` (TOST)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .._engine.errors import CrystallizeUsageError, HypothesisError
from .._engine.numbers import number
from ._builtin import built_in
from ._common import (
    TestResult,
    degenerate_result,
    describe,
    effect_size_of,
    min_detectable,
    pairing,
    samples,
    t_intervals,
    t_parts,
    t_quantile,
)


def _margin(margin: Any, relative: bool, mean_baseline: float, test: str) -> float:
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin > 0:
        msg = f"{test}(margin=...) takes a positive number, got {margin!r}"
        raise CrystallizeUsageError(msg)
    if relative:
        if mean_baseline == 0:
            msg = f"{test}: a relative margin needs a baseline mean other than 0"
            raise HypothesisError(msg)
        return float(margin) * abs(mean_baseline)
    return float(margin)


def _prepare(
    test: str,
    name: str,
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    margin: Any,
    relative: bool,
    alpha: float,
    paired: bool | None,
) -> TestResult | tuple[Any, Any, bool, float]:
    """The samples, the pairing and the margin in metric units, or the named result of data
    no gate can judge (invalid values, too few replicates)."""
    b, t = samples(baseline, treatment, test)
    is_paired = pairing(paired, baseline, treatment) and len(b) == len(t)
    degenerate = degenerate_result(b, t, is_paired, "two-sided", test, alpha)
    if degenerate is not None and degenerate.reason.startswith(("invalid", "too few")):
        return degenerate
    return b, t, is_paired, _margin(margin, relative, float(b.mean()), name)


def _shown(value: float, relative: bool, mean_baseline: float) -> str:
    text = f"{100 * value / abs(mean_baseline):+.1f}" if relative else number(value, sign=True)
    if float(text) == 0:
        text = "+0.0" if relative else "+0"  # never "-0.0"
    return text + ("%" if relative else "")


def _gate(
    test: str,
    b: Any,
    t: Any,
    *,
    change: float,
    se: float,
    df: float,
    low: float,
    high: float,
    outcome: str,
    statistic: float,
    pvalue: float,
    alpha: float,
    paired: bool,
    bounds: str,
    relative: bool,
    sign: int,
    caught: Sequence[Any],
    confidence: float,
) -> TestResult:
    described = describe(b, t)
    mean_b = described["mean_baseline"]
    mde = min_detectable(se, df, alpha, "greater")
    interval = f"[{_shown(low, relative, mean_b)}, {_shown(high, relative, mean_b)}]"
    level = f"{number(100 * confidence)}%"
    words = {
        "passed": f"{level} CI of the change {interval} clears the margin {bounds}",
        "failed": f"{level} CI of the change {interval} lies beyond the margin {bounds}",
        "inconclusive": (
            f"inconclusive: {level} CI of the change {interval} crosses the margin {bounds}; "
            f"with n={len(t)} the smallest detectable change is "
            f"{_shown(mde, relative, mean_b).lstrip('+')}"
        ),
    }
    return TestResult(
        test=test,
        statistic=float(statistic),
        pvalue=float(pvalue),
        alternative="greater" if "non-inferiority" in test else "two-sided",
        alpha=alpha,
        outcome=outcome,
        reason=words[outcome],
        difference=sign * change,
        effect_size=effect_size_of(b, t, paired)[0],
        effect_size_name=effect_size_of(b, t, paired)[1],
        mde=mde,
        paired=paired,
        warnings=tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)),
        _intervals=t_intervals(sign * change, se, df),
        **described,
    )


@built_in
def non_inferior(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    margin: float,
    relative: bool = False,
    higher_is_better: bool = True,
    alpha: float = 0.05,
    paired: bool | None = None,
) -> TestResult:
    """Non-inferiority: is the treatment worse than the baseline by less than ``margin``?

    ``relative=True`` reads the margin as a fraction of the baseline mean (0.02 = 2%).
    ``passed``: the one-sided (1 - alpha) bound of the change clears -margin; ``failed``:
    the change is worse than -margin with that confidence; ``inconclusive`` otherwise.
    """
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    prepared = _prepare(
        "non-inferiority t-test",
        "non_inferior",
        baseline,
        treatment,
        margin,
        relative,
        alpha,
        paired,
    )
    if isinstance(prepared, TestResult):
        return prepared
    b, t, is_paired, delta = prepared
    sign = 1 if higher_is_better else -1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diff, se, df = t_parts(b, t, is_paired)
        change = sign * diff  # positive = better
        if se == 0:
            low = high = change
            statistic, pvalue = 0.0, 0.0 if change > -delta else 1.0
        else:
            q = t_quantile(1 - alpha, df)
            low, high = change - q * se, change + q * se
            statistic = (change + delta) / se
            pvalue = float(stats.t.sf(statistic, df))
    outcome = "passed" if low > -delta else "failed" if high < -delta else "inconclusive"
    mean_b = float(b.mean())
    # The message speaks in the metric's direction, as the table does: with
    # higher_is_better=False a regression is an increase and the margin is +margin.
    shown_low, shown_high = (low, high) if sign > 0 else (-high, -low)
    return _gate(
        f"{'paired ' if is_paired else ''}non-inferiority t-test",
        b,
        t,
        change=change,
        se=se,
        df=df,
        low=shown_low,
        high=shown_high,
        outcome=outcome,
        statistic=statistic,
        pvalue=pvalue,
        alpha=alpha,
        paired=is_paired,
        bounds=_shown(-sign * delta, relative, mean_b),
        relative=relative,
        sign=sign,
        caught=caught,
        # [low, high] is the two-sided (1 - 2 alpha) interval: its lower end is the one-sided
        # (1 - alpha) bound the test decides on.
        confidence=1 - 2 * alpha,
    )


@built_in
def equivalent(
    baseline: Mapping[str, Any],
    treatment: Mapping[str, Any],
    margin: float,
    relative: bool = False,
    alpha: float = 0.05,
    paired: bool | None = None,
) -> TestResult:
    """Equivalence by two one-sided tests (TOST): is the change within +-``margin``?

    ``passed``: the (1 - 2 alpha) CI of the change lies inside (-margin, margin); ``failed``:
    it lies entirely outside; ``inconclusive`` otherwise. Paired when replicates pair.
    """
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    prepared = _prepare(
        "equivalence (TOST)", "equivalent", baseline, treatment, margin, relative, alpha, paired
    )
    if isinstance(prepared, TestResult):
        return prepared
    b, t, is_paired, delta = prepared
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diff, se, df = t_parts(b, t, is_paired)
        if se == 0:
            low = high = diff
            statistic, pvalue = 0.0, 0.0 if abs(diff) < delta else 1.0
        else:
            q = t_quantile(1 - alpha, df)
            low, high = diff - q * se, diff + q * se
            p_low = float(stats.t.sf((diff + delta) / se, df))
            p_high = float(stats.t.cdf((diff - delta) / se, df))
            statistic = min((diff + delta) / se, (delta - diff) / se)
            pvalue = max(p_low, p_high)
    outcome = (
        "passed"
        if -delta < low and high < delta
        else "failed"
        if high < -delta or low > delta
        else "inconclusive"
    )
    mean_b = float(b.mean())
    return _gate(
        f"{'paired ' if is_paired else ''}equivalence (TOST)",
        b,
        t,
        change=diff,
        se=se,
        df=df,
        low=low,
        high=high,
        outcome=outcome,
        statistic=statistic,
        pvalue=pvalue,
        alpha=alpha,
        paired=is_paired,
        bounds=f"+-{_shown(delta, relative, mean_b).lstrip('+')}",
        relative=relative,
        sign=1,
        caught=caught,
        confidence=1 - 2 * alpha,  # TOST: the (1 - 2 alpha) interval
    )
