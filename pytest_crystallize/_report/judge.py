"""Deciding verdicts from an experiment's runs: pure logic, no pytest.

A verdict passes when the verifier's result says ``passed`` (if present) else
``significant``, and, when the experiment's family holds several comparisons, its p-value
adjusted over the family is below alpha. Built-in gates may say ``inconclusive``. Failed
runs, missing metrics and verifier errors give ``error`` verdicts: never a verdict on partial
data, and never a NaN or infinite number in a report.

:func:`_decide` makes the decision and gathers its numbers; :func:`_message` words it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from .._engine.context import BASELINE_CONDITION
from .._engine.errors import HypothesisError, MissingMetricError
from .._engine.experiment import Experiment
from .._engine.hypotheses import (
    Hypothesis,
    as_mapping,
    check_metrics,
    evaluate,
    output_pvalue,
)
from .._engine.plain import plain
from .._engine.results import ConditionMetrics, HypothesisResult, build_metrics
from .._engine.runs import RunResult, user_traceback
from .._engine.verdict import Verdict
from ..stats._common import stdev
from ..stats._numbers import alpha_of, finite, number
from ..stats._power import replicates_needed


class _Call(NamedTuple):
    """The decision on one verifier output. ``overruled`` holds (p, adjusted p) when the
    family correction turned the verifier's pass into a fail."""

    outcome: str  # "passed" | "failed" | "inconclusive"
    reason: str
    overruled: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class _Decision:
    """What a verdict decided and the numbers it rests on, before any wording."""

    outcome: str
    calls: tuple[_Call, ...]
    test: str
    metrics: tuple[str, ...]
    first: str  # the metric the numbers describe
    n_baseline: int
    n_treatment: int
    mean_baseline: float | None
    mean_treatment: float | None
    pvalue: float | None
    pvalue_adjusted: float | None  # None for a family of one
    alpha: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    effect_size: float | None
    effect_size_name: str
    mde: float | None
    correction: str
    family_size: int
    degenerate: tuple[str, ...]  # the reasons built-in verifiers gave for degenerate data
    notes: tuple[str, ...]
    builtin: bool  # the output names its test, as the built-in verifiers' outputs do
    output: Any


def _judge_output(output: Mapping[str, Any]) -> _Call:
    """The decision on one verifier output, from its ``outcome``, ``passed`` or ``significant``."""
    if output.get("outcome") == "inconclusive":
        return _Call("inconclusive", str(output.get("reason") or "inconclusive"))
    raw = output.get("p_value", output.get("pvalue"))
    if raw is not None and finite(raw) is None and not isinstance(raw, str):
        return _Call("failed", f"the p-value is {raw!r}, so nothing can be concluded")
    for key in ("passed", "significant"):
        if key in output:
            why = str(output.get("reason") or f"{key}={bool(output[key])}")
            return _Call("passed" if output[key] else "failed", why)
    keys = ", ".join(repr(k) for k in output) or "none"
    return _Call(
        "failed",
        f"the verifier's result has neither 'passed' nor 'significant' (its keys: {keys}); "
        "return one of them so the verdict can be decided",
    )


def _corrected(call: _Call, p: float | None, p_adj: float | None, alpha: float | None) -> _Call:
    """``call``, failed when its raw p passes alpha but its adjusted p does not."""
    if (
        call.outcome == "passed"
        and p is not None
        and p_adj is not None
        and alpha is not None
        and p_adj >= alpha > p
    ):
        return _Call("failed", call.reason, (p, p_adj))
    return call


def _combine(calls: Sequence[_Call]) -> str:
    """Failed if any call failed, else inconclusive if any was, else passed."""
    for outcome in ("failed", "inconclusive"):
        if any(call.outcome == outcome for call in calls):
            return outcome
    return "passed"


def _mean(values: Sequence[Any]) -> float | None:
    numbers = [finite(v) for v in values]
    if not numbers or any(n is None for n in numbers):
        return None
    return sum(n for n in numbers if n is not None) / len(numbers)


def _notes(
    warned: Sequence[str],
    mappings: Sequence[Mapping[str, Any]],
    degenerate: Sequence[str],
    treatment: str,
    first: str,
    b: Sequence[Any],
    t: Sequence[Any],
) -> tuple[str, ...]:
    """Warnings the verifier raised or returned, and degenerate inputs (``b`` and ``t``: the
    values of the ``first`` metric in baseline and ``treatment``)."""
    notes = list(warned)
    for mapping in mappings:
        notes += [w for w in mapping.get("warnings", ()) if w not in notes]
    notes += [f"degenerate input: {reason}" for reason in degenerate if reason]
    if (
        not degenerate
        and len(b) > 1
        and len(set(map(repr, b))) == 1
        and len(set(map(repr, t))) == 1
    ):
        notes.append(
            f"degenerate input: zero variance in both conditions (every replicate of "
            f"{first!r} gave {b[0]!r} in baseline and {t[0]!r} in {treatment!r})"
        )
    return tuple(notes)


def _decide(
    hyp: Hypothesis,
    treatment: str,
    result: HypothesisResult,
    metrics: Mapping[str, ConditionMetrics],
) -> _Decision:
    """The outcome of (``hyp``, ``treatment``) and the numbers it rests on."""
    output = result.results[treatment]
    mappings = [as_mapping(o) for o in (output if isinstance(output, list) else [output])]
    adjusted_all = result.adjusted.get(treatment)
    adjusted = adjusted_all if isinstance(adjusted_all, list) else [adjusted_all]
    used = result.replicates[treatment]
    base, treated = metrics[BASELINE_CONDITION], metrics[treatment]
    names = tuple(m for g in hyp.metric_groups(list(base.metrics)) for m in g)
    first = names[0] if names else ""
    b = [base.metrics[first][i] for i in used] if first in base.metrics else []
    t = [treated.metrics[first][i] for i in used] if first in treated.metrics else []
    main = mappings[0]
    alpha = alpha_of(hyp.verifier, main)
    calls = [_judge_output(m) for m in mappings]
    for i, (mapping, p_adj) in enumerate(zip(mappings, adjusted, strict=False)):
        calls[i] = _corrected(calls[i], output_pvalue(mapping), p_adj, alpha)
    degenerate = tuple(m["reason"] for m in mappings if m.get("effect_size_name") == "none")
    warned = result.warnings.get(treatment, ())
    return _Decision(
        outcome=_combine(calls),
        calls=tuple(calls),
        test=str(main.get("test") or hyp.verifier_name),
        metrics=names,
        first=first,
        n_baseline=len(b),
        n_treatment=len(t),
        mean_baseline=_mean(b),
        mean_treatment=_mean(t),
        pvalue=output_pvalue(main),
        pvalue_adjusted=adjusted[0] if adjusted and result.family_size > 1 else None,
        alpha=alpha,
        difference=finite(main.get("difference")),
        ci_low=finite(main.get("ci_low")),
        ci_high=finite(main.get("ci_high")),
        effect_size=finite(main.get("effect_size")),
        effect_size_name=str(main.get("effect_size_name") or ""),
        mde=finite(main.get("mde")),
        correction=result.correction,
        family_size=result.family_size,
        degenerate=degenerate,
        notes=_notes(warned, mappings, degenerate, treatment, first, b, t),
        builtin="test" in main,
        output=output,
    )


def _reason(call: _Call, decision: _Decision) -> str:
    if call.overruled is None:
        return call.reason
    p, p_adj = call.overruled
    return (
        f"p={number(p, 3)} < alpha={number(decision.alpha)} alone, but not after "
        f"{decision.correction} correction over {decision.family_size} comparisons "
        f"(adjusted p={number(p_adj, 3)})"
    )


def _numbers(d: _Decision) -> str:
    """p (raw and adjusted), alpha, n, means, the change with its CI, what is detectable."""
    adjusted = f" (adjusted {number(d.pvalue_adjusted)}, {d.correction})"
    text = (
        f"p={number(d.pvalue)}{adjusted if d.family_size > 1 else ''}, "
        f"alpha={number(d.alpha)}, n={d.n_baseline} vs {d.n_treatment}, "
        f"means {number(d.mean_baseline)} vs {number(d.mean_treatment)}"
    )
    if d.ci_low is not None:
        text += f", difference {number(d.difference)} [{number(d.ci_low)}, {number(d.ci_high)}]"
    if d.mde is not None:
        text += f", detectable {number(d.mde)}"
    return text


def _message(hyp: Hypothesis, treatment: str, d: _Decision) -> str:
    """The verdict's message: the test and its numbers; why, when it did not pass; notes."""
    numbers = _numbers(d)
    if d.outcome == "passed":
        message = f"{d.test}: {'; '.join([*d.degenerate, numbers])}"
    else:
        why = "; ".join(_reason(c, d) for c in d.calls if c.outcome == d.outcome)
        said = f": {why}" if d.outcome == "inconclusive" else f" did not pass ({why})"
        message = (
            f"hypothesis {hyp.name!r}, treatment {treatment!r} vs baseline on {d.first!r}: "
            f"{d.test}{said}\n  {numbers}"
        )
        if not d.builtin:  # a user's verifier: show what it said; built-ins are above
            message += f"\n  the verifier returned: {plain(d.output)!r}"
    return message + "".join(f"\n  note: {n}" for n in d.notes)


def _verdict(
    experiment: str,
    hyp: Hypothesis,
    treatment: str,
    result: HypothesisResult,
    metrics: Mapping[str, ConditionMetrics],
) -> Verdict:
    d = _decide(hyp, treatment, result, metrics)
    return Verdict(
        experiment=experiment,
        hypothesis=hyp.name,
        treatment=treatment,
        outcome=d.outcome,
        message=_message(hyp, treatment, d),
        verifier=d.test,
        metrics=d.metrics,
        pvalue=d.pvalue,
        pvalue_adjusted=d.pvalue_adjusted,
        correction=d.correction,
        alpha=d.alpha,
        n_baseline=d.n_baseline,
        n_treatment=d.n_treatment,
        mean_baseline=d.mean_baseline,
        mean_treatment=d.mean_treatment,
        difference=d.difference,
        ci_low=d.ci_low,
        ci_high=d.ci_high,
        effect_size=d.effect_size,
        effect_size_name=d.effect_size_name,
        mde=d.mde,
        output=plain(d.output, finite=True),
        notes=d.notes,
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
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

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
            (finite(x), finite(y))
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
                f"change of {number(target, sign=True)} in {metric!r} with 80% power (sd of "
                f"paired differences {number(sd)}); the pilot itself detects {number(verdict.mde)}"
            )
        out.append(replace(verdict, outcome="skipped", message=message))
    return out
