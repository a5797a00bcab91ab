"""How a sequential design judges one hypothesis: its side, its bounds and nominal levels at
each look, and the stage-wise adjusted p-value and confidence interval of a decided
comparison (the rules are in :mod:`.sequential`'s docstring).

The z statistic of a comparison is the normal quantile equivalent to its test's p-value
(two-sided: ``|z|`` with the estimate's sign; one-sided and gates: positive when favourable),
and the standard error of the difference at the look is the width of the test's 95% CI over
``2 * 1.96`` (without an interval: ``difference / z``, when they agree in sign); the
interval for the drift ``eta``, from ``z = difference / se``, is scaled to the difference by
``se_k * sqrt(t_k)``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any, NamedTuple

from .._engine.hypotheses import Hypothesis
from .._engine.numbers import alpha_of
from .._engine.verdict import Verdict
from ..stats._sequential import (
    efficacy_bounds,
    futility_levels,
    nominal_levels,
    stagewise_interval,
    stagewise_pvalue,
)

GATES = ("non_inferior", "equivalent")
_NORMAL = NormalDist()
_Z975 = _NORMAL.inv_cdf(0.975)


class LookPlan(NamedTuple):
    """How one hypothesis is judged sequentially: its side, its bounds, its levels."""

    hyp: Hypothesis
    side: str  # "two-sided", "greater" or "less" (a gate: "greater", against its margin)
    gate: bool
    alpha: float
    bounds: tuple[float, ...]
    levels: tuple[float, ...]  # the level of the test's own p-value at each look
    # Futile at a look when the one-sided p-value in the favourable direction is above it:
    # the test's own for one-sided tests and gates, from a two-sided test's p-value and the
    # estimate's sign otherwise (the better direction: see .sequential).
    futility: tuple[float, ...]
    # A two-sided test whose estimate has no sign to read: futile when its p-value is above.
    futility_unsigned: tuple[float, ...]


def _parameter(verifier: Any, name: str) -> Any:
    """The value ``verifier`` was made with for ``name``, else its default, else None."""
    params = getattr(verifier, "params", None) or {}
    if name in params:
        return params[name]
    fn = getattr(getattr(verifier, "factory", None), "fn", None)
    if fn is None:
        return None
    found = inspect.signature(fn).parameters.get(name)
    return None if found is None or found.default is inspect.Parameter.empty else found.default


def look_plan(hyp: Hypothesis, fractions: Sequence[float], spending: str) -> LookPlan:
    """The side, alpha, bounds and per-look levels of ``hyp`` in a design with these
    information ``fractions`` and ``spending``."""
    factory = getattr(hyp.verifier, "factory", None)
    gate = getattr(factory, "name", None) in GATES and getattr(factory, "floor", None) is not None
    side = "greater" if gate else str(_parameter(hyp.verifier, "alternative") or "two-sided")
    if side not in ("greater", "less"):
        side = "two-sided"
    alpha = alpha_of(hyp.verifier) or 0.05
    if side == "two-sided":
        bounds = efficacy_bounds(fractions, alpha, spending)
        futile = futility_levels(bounds, fractions, two_sided=False)
        unsigned = futility_levels(bounds, fractions, two_sided=True)
        return LookPlan(hyp, side, gate, alpha, bounds, nominal_levels(bounds), futile, unsigned)
    bounds = efficacy_bounds(fractions, min(2 * alpha, 0.99), spending)
    levels = tuple(p / 2 for p in nominal_levels(bounds))
    futile = futility_levels(bounds, fractions, two_sided=False)
    return LookPlan(hyp, side, gate, alpha, bounds, levels, futile, futile)


def is_futile(plan: LookPlan, verdict: Verdict, look: int, better: tuple[bool, str] | None) -> bool:
    """Whether ``verdict`` is futile at ``look``: its one-sided p-value in the favourable
    direction is above the plan's threshold. A two-sided test's comes from its p-value and
    the sign of its estimate in the ``better`` direction (its metric's); without a sign or
    a direction, its p-value is compared with the threshold on ``|z|``."""
    p, k = verdict.pvalue, look - 1
    if p is None:
        return False
    if plan.side != "two-sided":
        return p > plan.futility[k]
    diff = verdict.difference
    if diff is None and verdict.mean_baseline is not None and verdict.mean_treatment is not None:
        diff = verdict.mean_treatment - verdict.mean_baseline
    if diff is None or better is None:
        return p > plan.futility_unsigned[k]
    favourable = diff > 0 if better[0] else diff < 0
    return (p / 2 if favourable else 1.0 - p / 2) > plan.futility[k]


def _z(plan: LookPlan, p: float) -> float:
    """The z statistic equivalent to ``p``: favourable-positive for one-sided tests and
    gates, |z| for two-sided ones (the caller gives it the estimate's sign)."""
    clamped = min(max(p, 1e-300), 1.0 - 1e-16)
    if plan.side == "two-sided":
        return -_NORMAL.inv_cdf(clamped / 2)
    return -_NORMAL.inv_cdf(clamped)


def stagewise_note(verdict: Mapping[str, Any]) -> str:
    """What a report's p-value cell adds for a verdict of a sequential design (its JSON
    form): that the p-value (and the CI) is adjusted for the design, and at which look."""
    look, looks = verdict.get("look"), verdict.get("looks")
    if look is None or verdict.get("pvalue") is None:
        return ""
    return f" (stage-wise, look {look} of {looks})"


class Adjusted(NamedTuple):
    pvalue: float | None
    ci_low: float | None
    ci_high: float | None


def stagewise(plan: LookPlan, verdict: Verdict, fractions: Sequence[float], look: int) -> Adjusted:
    """The design-adjusted p-value and 95% CI of the difference at ``look``."""
    p, diff = verdict.pvalue, verdict.difference
    if p is None:
        return Adjusted(None, None, None)
    z = _z(plan, p)
    two = stagewise_pvalue(plan.bounds, fractions, look, z)
    adjusted = two if plan.side == "two-sided" else (two / 2 if z >= 0 else 1 - two / 2)
    if diff is None:
        return Adjusted(adjusted, None, None)
    if verdict.ci_low is not None and verdict.ci_high is not None:
        se = (verdict.ci_high - verdict.ci_low) / (2 * _Z975)
    else:  # no interval: the standard error the p-value implies, when it implies one
        z_diff = {"two-sided": math.copysign(z, diff), "greater": z, "less": -z}[plan.side]
        se = diff / z_diff if abs(z_diff) > 1e-6 and (diff > 0) == (z_diff > 0) else 0.0
    if not se > 0:
        return Adjusted(adjusted, None, None)
    low, high = stagewise_interval(plan.bounds, fractions, look, diff / se, 0.95)
    scale = se * math.sqrt(fractions[look - 1])
    return Adjusted(adjusted, low * scale, high * scale)
