"""Results and shared computations of the built-in verifiers (see :mod:`stats`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, final

from .._engine.errors import CrystallizeUsageError, HypothesisError
from .._engine.numbers import number

_ALTERNATIVES = ("two-sided", "greater", "less")
POWER = 0.8
MAX_RESAMPLES = 4999
BOOTSTRAP_RESAMPLES = 1999  # percentile CIs need ~2,000; each resample of n=50 medians sorts
RESAMPLING_SEED = 20240531


class ConfidenceInterval(NamedTuple):
    low: float
    high: float


@final
@dataclass(frozen=True, slots=True)
class TestResult:
    """The result of a built-in verifier.

    Attributes
    ----------
    test:
        The test actually used, e.g. ``"paired t-test"``.
    statistic, pvalue, alternative:
        As in scipy; ``alternative`` is about treatment minus baseline.
    alpha:
        The significance level the outcome was decided at.
    outcome:
        ``"passed"``, ``"failed"`` or ``"inconclusive"``.
    reason:
        Why, in words (always set for degenerate data: ``"no variance"``, ...).
    n_baseline, n_treatment, mean_baseline, mean_treatment, sd_baseline, sd_treatment:
        The samples compared.
    difference:
        The estimate of treatment minus baseline (of means, or Hodges-Lehmann for rank tests).
    effect_size, effect_size_name:
        Hedges' g (independent), d_z (paired) or Cliff's delta (rank tests).
    mde:
        The smallest difference detectable with 80% power at this n and variance.
    paired:
        Whether replicates were analysed as pairs (they share seeds).
    warnings:
        Warnings the computation raised (recorded, not raised).
    """

    __test__ = False  # not a pytest test class, despite the name

    test: str
    statistic: float
    pvalue: float
    alternative: str
    alpha: float
    outcome: str
    reason: str
    n_baseline: int
    n_treatment: int
    mean_baseline: float
    mean_treatment: float
    sd_baseline: float
    sd_treatment: float
    difference: float
    effect_size: float
    effect_size_name: str
    mde: float
    paired: bool
    warnings: tuple[str, ...] = ()
    _intervals: tuple[tuple[float, float, float], ...] = field(default=(), repr=False)
    # False when the data allow no estimate of the change (too few replicates, invalid
    # values): ``as_dict()`` then gives no difference and no interval rather than "0 [0, 0]".
    _estimated: bool = field(default=True, repr=False)

    @property
    def significant(self) -> bool:
        """Whether the outcome is ``"passed"`` (the tutorial's ``significant`` key)."""
        return self.outcome == "passed"

    @property
    def passed(self) -> bool:
        """Whether the outcome is ``"passed"``."""
        return self.outcome == "passed"

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """The two-sided CI of the difference at ``confidence_level``."""
        for level, low, high in self._intervals:
            if math.isclose(level, confidence_level):
                return ConfidenceInterval(low, high)
        levels = ", ".join(number(level) for level, _, _ in self._intervals)
        msg = (
            f"confidence_level must be one of {levels} for a {self.test}, got {confidence_level!r}"
        )
        raise ValueError(msg)

    def as_dict(self) -> dict[str, Any]:
        """The result as a mapping, with the ``p_value`` and ``significant`` keys rankers read."""
        ci: tuple[float | None, float | None] = (None, None)
        if self._intervals and self._estimated:
            ci = self.confidence_interval(0.95)
        return {
            "test": self.test,
            "statistic": self.statistic,
            "p_value": self.pvalue,
            "pvalue": self.pvalue,
            "alpha": self.alpha,
            "significant": self.significant,
            "passed": self.passed,
            "outcome": self.outcome,
            "reason": self.reason,
            "alternative": self.alternative,
            "n_baseline": self.n_baseline,
            "n_treatment": self.n_treatment,
            "mean_baseline": self.mean_baseline,
            "mean_treatment": self.mean_treatment,
            "sd_baseline": self.sd_baseline,
            "sd_treatment": self.sd_treatment,
            "difference": self.difference if self._estimated else None,
            "ci_low": ci[0],
            "ci_high": ci[1],
            "effect_size": self.effect_size,
            "effect_size_name": self.effect_size_name,
            "mde": self.mde if self._estimated else None,
            "paired": self.paired,
            "warnings": list(self.warnings),
        }


# --- inputs -------------------------------------------------------------------------------


def samples(baseline: Mapping[str, Any], treatment: Mapping[str, Any], test: str) -> Any:
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    if len(baseline) != 1 or set(baseline) != set(treatment):
        msg = (
            f"{test} compares one metric, got metrics {sorted(baseline)!r}; give the hypothesis "
            f"metrics='name' or metrics=[['a'], ['b']] (one comparison per metric)"
        )
        raise HypothesisError(msg)
    (name,) = baseline
    try:
        b = np.asarray(baseline[name], dtype=float)
        t = np.asarray(treatment[name], dtype=float)
    except (TypeError, ValueError) as exc:
        msg = f"{test}: metric {name!r} must hold one number per replicate ({exc})"
        raise HypothesisError(msg) from exc
    return b, t


def pairs_by_seed(baseline: Mapping[str, Any], treatment: Mapping[str, Any]) -> bool:
    """Whether the replicates pair: the same seeds in the same order in both conditions."""
    seeds_b = getattr(baseline, "seeds", None)
    seeds_t = getattr(treatment, "seeds", None)
    return seeds_b is not None and len(seeds_b) > 0 and seeds_b == seeds_t


def pairing(paired: bool | None, baseline: Mapping[str, Any], treatment: Mapping[str, Any]) -> bool:
    """``paired`` as given, or (``None``) whether the replicates pair by seed."""
    return pairs_by_seed(baseline, treatment) if paired is None else bool(paired)


def check_alternative(alternative: str, test: str) -> None:
    if alternative not in _ALTERNATIVES:
        msg = f"{test}(alternative=...) takes one of {_ALTERNATIVES}, got {alternative!r}"
        raise CrystallizeUsageError(msg)


# --- shared computations ------------------------------------------------------------------


def stdev(x: Any) -> float:
    return float(x.std(ddof=1)) if len(x) > 1 else 0.0


def describe(b: Any, t: Any) -> dict[str, Any]:
    return {
        "n_baseline": len(b),
        "n_treatment": len(t),
        "mean_baseline": float(b.mean()) if len(b) else 0.0,
        "mean_treatment": float(t.mean()) if len(t) else 0.0,
        "sd_baseline": stdev(b),
        "sd_treatment": stdev(t),
    }


def degenerate_result(
    b: Any, t: Any, paired: bool, alternative: str, test: str, alpha: float
) -> TestResult | None:
    """A result for data no test can judge honestly, else ``None``."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    base = {"test": test, "alternative": alternative, "alpha": alpha, "paired": paired}
    bad = int((~np.isfinite(b)).sum() + (~np.isfinite(t)).sum())
    if bad:
        return _named(b, t, base, "failed", f"invalid data: {bad} NaN or infinite metric values")
    if len(b) < 2 or len(t) < 2:
        return _named(
            b,
            t,
            base,
            "inconclusive",
            f"too few replicates: n={len(b)} vs {len(t)}; a test needs at least 2 per condition",
        )
    # Constant up to floating-point rounding counts as constant: b + 0.1 is a deterministic
    # shift, not a difference with t = 6e15.
    tolerance = (
        64 * float(np.finfo(float).eps) * max(float(np.abs(b).max()), float(np.abs(t).max()))
    )
    spread = np.ptp(t - b) if paired else max(np.ptp(b), np.ptp(t))
    if spread > tolerance:
        return None
    diff = float(t.mean() - b.mean())
    if abs(diff) <= tolerance:
        diff = 0.0
        what = (
            "every paired difference is exactly 0"
            if paired
            else f"every replicate gave {float(b[0])!r} in both conditions"
        )
        return _named(b, t, base, "failed", f"no variance: {what}")
    holds = (
        alternative == "two-sided"
        or (alternative == "greater" and diff > 0)
        or (alternative == "less" and diff < 0)
    )
    return _named(
        b,
        t,
        base,
        "passed" if holds else "failed",
        f"deterministic difference of {number(diff, 6, sign=True)}, zero variance"
        + (" of the paired differences" if paired else ""),
        difference=diff,
        pvalue=0.0 if holds else 1.0,
    )


def too_few_result(
    b: Any, t: Any, paired: bool, alternative: str, test: str, alpha: float, reason: str
) -> TestResult:
    """The named ``inconclusive`` result of data too few for ``test`` (``reason`` says why,
    starting with ``"too few"``): no p-value below 1 and no estimate of the change."""
    base = {"test": test, "alternative": alternative, "alpha": alpha, "paired": paired}
    return _named(b, t, base, "inconclusive", reason)


def _named(
    b: Any,
    t: Any,
    base: dict[str, Any],
    outcome: str,
    reason: str,
    difference: float = 0.0,
    pvalue: float = 1.0,
) -> TestResult:
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    b = b[np.isfinite(b)]
    t = t[np.isfinite(t)]
    described = describe(b, t)
    return TestResult(
        statistic=0.0,
        pvalue=pvalue,
        outcome=outcome,
        reason=reason,
        difference=difference,
        effect_size=0.0,
        effect_size_name="none",
        mde=0.0,
        _intervals=((0.95, difference, difference),),
        _estimated=not reason.startswith(("invalid", "too few")),
        **base,
        **described,
    )


def t_quantile(q: float, df: float) -> float:
    """The t distribution's quantile (``scipy.stats.t.ppf``, from scipy.special: the
    t-tests need no scipy.stats, whose import costs a session's judge most of a second)."""
    from scipy import special  # lazy

    return float(special.stdtrit(df, q))


def t_pvalue(statistic: float, df: float, alternative: str) -> float:
    """The t-test's p-value, as scipy's ``ttest_ind``/``ttest_rel`` compute it."""
    from scipy import special  # lazy

    if alternative == "less":
        return float(special.stdtr(df, statistic))
    if alternative == "greater":
        return float(special.stdtr(df, -statistic))
    return float(2 * special.stdtr(df, -abs(statistic)))


def min_detectable(se: float, df: float, alpha: float, alternative: str) -> float:
    """Smallest true difference detected with 80% power by a t-test with this SE and df."""
    tail = alpha / 2 if alternative == "two-sided" else alpha
    if se == 0 or not math.isfinite(df) or df <= 0:
        return 0.0
    return (t_quantile(1 - tail, df) + t_quantile(POWER, df)) * se


def t_parts(b: Any, t: Any, paired: bool) -> tuple[float, float, float]:
    """(difference, standard error, degrees of freedom), paired or Welch."""
    if paired:
        d = t - b
        return float(d.mean()), stdev(d) / math.sqrt(len(d)), len(d) - 1.0
    vb, vt = stdev(b) ** 2 / len(b), stdev(t) ** 2 / len(t)
    se = math.sqrt(vb + vt)
    df = (vb + vt) ** 2 / (vb**2 / (len(b) - 1) + vt**2 / (len(t) - 1)) if se else 1.0
    return float(t.mean() - b.mean()), se, df


def t_intervals(diff: float, se: float, df: float) -> tuple[tuple[float, float, float], ...]:
    out = []
    for level in (0.90, 0.95, 0.99):
        half = t_quantile(0.5 + level / 2, df) * se
        out.append((level, diff - half, diff + half))
    return tuple(out)


def effect_size_of(b: Any, t: Any, paired: bool) -> tuple[float, str]:
    if paired:
        d = t - b
        sd = stdev(d)
        return (float(d.mean() / sd) if sd else 0.0), "d_z"
    n1, n2 = len(b), len(t)
    pooled = math.sqrt(((n1 - 1) * stdev(b) ** 2 + (n2 - 1) * stdev(t) ** 2) / (n1 + n2 - 2))
    d = float(t.mean() - b.mean()) / pooled if pooled else 0.0
    return d * (1 - 3 / (4 * (n1 + n2) - 9)), "hedges_g"


def cliffs_delta(b: Any, t: Any) -> float:
    """P(T > B) - P(T < B) over all pairs (2 * A12 - 1)."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    # Counted per treatment value in the sorted baseline (O(n log n)), not over n1 * n2 pairs.
    ordered = np.sort(b)
    below = np.searchsorted(ordered, t, side="left")  # baseline values under each t_i
    above = len(b) - np.searchsorted(ordered, t, side="right")  # and over it
    return float(int((below - above).sum()) / (len(b) * len(t)))


def _decide(pvalue: float, alpha: float) -> tuple[str, str]:
    """Pass only when p is strictly below alpha (p == alpha fails)."""
    if pvalue < alpha:
        return "passed", f"p={number(pvalue, 3)} < alpha={number(alpha)}"
    return "failed", f"p={number(pvalue, 3)} >= alpha={number(alpha)}"


def finish(
    test: str,
    b: Any,
    t: Any,
    *,
    statistic: float,
    pvalue: float,
    alternative: str,
    alpha: float,
    paired: bool,
    difference: float,
    intervals: tuple[tuple[float, float, float], ...],
    effect: tuple[float, str],
    caught: Sequence[Any],
) -> TestResult:
    _, se, df = t_parts(b, t, paired)
    outcome, reason = _decide(pvalue, alpha)
    return TestResult(
        test=test,
        statistic=float(statistic),
        pvalue=float(pvalue),
        alternative=alternative,
        alpha=alpha,
        outcome=outcome,
        reason=reason,
        difference=float(difference),
        effect_size=effect[0],
        effect_size_name=effect[1],
        mde=min_detectable(se, df, alpha, alternative),
        paired=paired,
        warnings=tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)),
        _intervals=intervals,
        **describe(b, t),
    )
