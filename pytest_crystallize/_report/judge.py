"""Deciding verdicts from an experiment's runs: pure logic, no pytest.

A verdict passes when the verifier's result says ``passed`` (if present) else
``significant``, and, when the experiment's family holds several comparisons, its p-value
adjusted over the family is below alpha. Built-in gates may say ``inconclusive``. Failed
runs, missing metrics and verifier errors give ``error`` verdicts: never a verdict on partial
data, and never a NaN or infinite number in a report.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._engine.context import BASELINE_CONDITION
from .._engine.errors import HypothesisError, MissingMetricError
from .._engine.experiment import Experiment
from .._engine.hypotheses import (
    Hypothesis,
    VerifierCallable,
    as_mapping,
    check_metrics,
    evaluate,
    output_pvalue,
)
from .._engine.results import (
    ConditionMetrics,
    HypothesisResult,
    RunResult,
    Verdict,
    build_metrics,
    plain,
    user_traceback,
)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _alpha(hyp: Hypothesis, output: Mapping[str, Any]) -> float | None:
    for key in ("alpha", "significance_level"):
        if isinstance(output.get(key), int | float):
            return float(output[key])
    verifier = hyp.verifier
    if isinstance(verifier, VerifierCallable):
        if "alpha" in verifier.params:
            return float(verifier.params["alpha"])
        param = inspect.signature(verifier.factory.fn).parameters.get("alpha")
        if param is not None and isinstance(param.default, int | float):
            return float(param.default)
    return None


def _decide(output: Mapping[str, Any]) -> tuple[str, str]:
    """``("passed" | "failed" | "inconclusive", why)`` from one verifier output."""
    if output.get("outcome") == "inconclusive":
        return "inconclusive", str(output.get("reason") or "inconclusive")
    raw = output.get("p_value", output.get("pvalue"))
    if raw is not None and _finite(raw) is None and not isinstance(raw, str):
        return "failed", f"the p-value is {raw!r}, so nothing can be concluded"
    for key in ("passed", "significant"):
        if key in output:
            why = str(output.get("reason") or f"{key}={bool(output[key])}")
            return ("passed" if output[key] else "failed"), why
    keys = ", ".join(repr(k) for k in output) or "none"
    return "failed", (
        f"the verifier's result has neither 'passed' nor 'significant' (its keys: {keys}); "
        "return one of them so the verdict can be decided"
    )


def _mean(values: Sequence[Any]) -> float | None:
    numbers = [_finite(v) for v in values]
    if not numbers or any(n is None for n in numbers):
        return None
    return sum(n for n in numbers if n is not None) / len(numbers)


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _combine(decisions: Sequence[tuple[str, str]]) -> tuple[str, str]:
    for outcome in ("failed", "inconclusive"):
        reasons = [why for o, why in decisions if o == outcome]
        if reasons:
            return outcome, "; ".join(reasons)
    return "passed", "; ".join(why for _, why in decisions)


def _verdict(
    experiment: str,
    hyp: Hypothesis,
    treatment: str,
    result: HypothesisResult,
    metrics: Mapping[str, ConditionMetrics],
) -> Verdict:
    output = result.results[treatment]
    outputs = output if isinstance(output, list) else [output]
    mappings = [as_mapping(o) for o in outputs]
    adjusted_all = result.adjusted.get(treatment)
    adjusted = adjusted_all if isinstance(adjusted_all, list) else [adjusted_all]
    used = result.replicates[treatment]
    base, treated = metrics[BASELINE_CONDITION], metrics[treatment]
    names = [m for g in hyp.metric_groups(list(base.metrics)) for m in g]
    first = names[0] if names else ""
    b = [base.metrics[first][i] for i in used] if first in base.metrics else []
    t = [treated.metrics[first][i] for i in used] if first in treated.metrics else []
    notes = list(result.warnings.get(treatment, ()))
    for mapping in mappings:
        notes += [w for w in mapping.get("warnings", ()) if w not in notes]
    named = [m["reason"] for m in mappings if m.get("effect_size_name") == "none"]
    notes += [f"degenerate input: {reason}" for reason in named if reason]
    if not named and len(b) > 1 and len(set(map(repr, b))) == 1 and len(set(map(repr, t))) == 1:
        notes.append(
            f"degenerate input: zero variance in both conditions (every replicate of "
            f"{first!r} gave {b[0]!r} in baseline and {t[0]!r} in {treatment!r})"
        )
    alpha = _alpha(hyp, mappings[0])
    decisions = [_decide(m) for m in mappings]
    for i, (mapping, p_adj) in enumerate(zip(mappings, adjusted, strict=False)):
        p = output_pvalue(mapping)
        if (
            decisions[i][0] == "passed"
            and p is not None
            and p_adj is not None
            and alpha is not None
            and result.family_size > 1
            and p_adj >= alpha > p
        ):
            decisions[i] = (
                "failed",
                f"p={p:.3g} < alpha={alpha:g} alone, but not after {result.correction} "
                f"correction over {result.family_size} comparisons (adjusted p={p_adj:.3g})",
            )
    outcome, why = _combine(decisions)
    pvalue = output_pvalue(mappings[0])
    p_adj = adjusted[0] if adjusted else None
    main = mappings[0]
    numbers = (
        f"p={fmt(pvalue)}"
        + (f" (adjusted {fmt(p_adj)}, {result.correction})" if result.family_size > 1 else "")
        + f", alpha={fmt(alpha)}, n={len(b)} vs {len(t)}, means {fmt(_mean(b))} vs {fmt(_mean(t))}"
    )
    if _finite(main.get("ci_low")) is not None:
        numbers += (
            f", difference {fmt(_finite(main.get('difference')))} "
            f"[{fmt(_finite(main['ci_low']))}, {fmt(_finite(main.get('ci_high')))}]"
        )
    if _finite(main.get("mde")) is not None:
        numbers += f", detectable {fmt(_finite(main['mde']))}"
    test = str(main.get("test") or hyp.verifier_name)
    if outcome == "passed":
        message = f"{test}: {'; '.join([*named, numbers])}"
    else:
        message = (
            f"hypothesis {hyp.name!r}, treatment {treatment!r} vs baseline on {first!r}: "
            + (f"{test}: {why}" if outcome == "inconclusive" else f"{test} did not pass ({why})")
            + f"\n  {numbers}"
        )
        if "test" not in main:  # a user's verifier: show what it said; built-ins are above
            message += f"\n  the verifier returned: {plain(output)!r}"
    if notes:
        message += "".join(f"\n  note: {n}" for n in notes)
    return Verdict(
        experiment=experiment,
        hypothesis=hyp.name,
        treatment=treatment,
        outcome=outcome,
        message=message,
        verifier=test,
        metrics=tuple(names),
        pvalue=pvalue,
        pvalue_adjusted=p_adj if result.family_size > 1 else None,
        correction=result.correction,
        alpha=alpha,
        n_baseline=len(b),
        n_treatment=len(t),
        mean_baseline=_mean(b),
        mean_treatment=_mean(t),
        difference=_finite(main.get("difference")),
        ci_low=_finite(main.get("ci_low")),
        ci_high=_finite(main.get("ci_high")),
        effect_size=_finite(main.get("effect_size")),
        effect_size_name=str(main.get("effect_size_name") or ""),
        mde=_finite(main.get("mde")),
        output=plain(output, finite=True),
        notes=tuple(notes),
    )


def judge(
    name: str,
    experiment: Experiment,
    runs: Sequence[RunResult],
    treatments: Sequence[str],
    correction: str = "holm",
) -> list[Verdict]:
    """Verdicts for every (hypothesis, treatment) from complete, error-free runs."""

    def all_errors(message: str) -> list[Verdict]:
        return [
            Verdict(name, h.name, t, "error", message, verifier=h.verifier_name)
            for h in experiment.hypotheses
            for t in treatments
        ]

    # Runs arrive in whatever order the chunks finished (xdist varies it): count and quote
    # the failures in the experiment's order, (condition, replicate), so the message is the
    # same however the runs were spread.
    order = {condition: i for i, (condition, _) in enumerate(experiment.conditions())}
    failed = sorted(
        (r for r in runs if r.error is not None),
        key=lambda r: (order.get(r.condition, len(order)), r.replicate),
    )
    if failed:
        counts: dict[str, int] = {}
        for run in failed:
            counts[run.condition] = counts.get(run.condition, 0) + 1
        shown = ", ".join(
            f"{n} of {experiment.replicates} replicates of condition {c!r}"
            for c, n in counts.items()
        )
        first = next(r.error for r in failed if r.error is not None)
        return all_errors(
            f"{shown} failed, so no verdict is given on partial data; first failure: "
            f"{first.summary()} (see the failed chunk for the traceback)"
        )
    conditions = [BASELINE_CONDITION, *treatments]
    metrics = build_metrics(runs, conditions, experiment.replicates)
    try:
        check_metrics(experiment.hypotheses, metrics, name)
        evaluated = evaluate(
            experiment.hypotheses,
            metrics,
            BASELINE_CONDITION,
            treatments,
            experiment.correction or correction,
        )
    except (MissingMetricError, HypothesisError) as exc:
        cause = exc.__cause__
        return all_errors(str(exc) + (f"\n\n{user_traceback(cause)}" if cause else ""))
    verdicts = []
    for hyp, result in zip(experiment.hypotheses, evaluated, strict=True):
        for treatment in treatments:
            if treatment in result.results:
                verdicts.append(_verdict(name, hyp, treatment, result, metrics))
                continue
            message = (
                f"no replicate has the metrics {hyp.metrics_spec!r} in both baseline and "
                f"{treatment!r}, so there is nothing to compare"
            )
            verdicts.append(Verdict(name, hyp.name, treatment, "error", message))
    return verdicts


def planned(
    verdicts: Sequence[Verdict],
    experiment: Experiment,
    runs: Sequence[RunResult],
    effect: tuple[float, bool],
) -> list[Verdict]:
    """``--crystallize-plan``: the runs are a pilot; each verdict becomes a skip that says how
    many replicates detect ``effect`` (absolute, or relative to the baseline mean) with 80%
    power, from the standard deviation of the pilot's paired differences."""
    from dataclasses import replace

    import numpy as np

    from ..stats._common import stdev
    from ..stats._power import replicates_needed

    size, relative = effect
    conditions = [BASELINE_CONDITION, *{v.treatment: None for v in verdicts}]
    metrics = build_metrics(runs, conditions, experiment.replicates)
    out = []
    for verdict in verdicts:
        if not verdict.metrics or verdict.outcome == "error":
            out.append(verdict)
            continue
        metric = verdict.metrics[0]
        base, treated = metrics[BASELINE_CONDITION], metrics[verdict.treatment]
        pairs = [
            (_finite(x), _finite(y))
            for x, y in zip(
                base.metrics.get(metric, []), treated.metrics.get(metric, []), strict=True
            )
        ]
        diffs = [y - x for x, y in pairs if x is not None and y is not None]
        mean_b = _mean([x for x, _ in pairs if x is not None]) or 0.0
        target = size * abs(mean_b) if relative else size
        sd = stdev(np.asarray(diffs, dtype=float))
        if len(diffs) < 2 or target == 0:
            message = f"plan mode: the pilot has {len(diffs)} usable pairs; need 2 or more"
        else:
            needed = replicates_needed(sd, target, paired=True, alpha=verdict.alpha or 0.05)
            message = (
                f"plan mode (pilot of {len(diffs)} replicates): {needed} replicates detect a "
                f"change of {target:+.4g} in {metric!r} with 80% power (sd of paired "
                f"differences {sd:.4g}); the pilot itself detects {fmt(verdict.mde)}"
            )
        out.append(replace(verdict, outcome="skipped", message=message))
    return out
