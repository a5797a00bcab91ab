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
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._engine.context import BASELINE_CONDITION
from .._engine.errors import HypothesisError, MissingMetricError
from .._engine.experiment import Experiment
from .._engine.gate import gaps
from .._engine.hypotheses import (
    Hypothesis,
    as_mapping,
    check_metrics,
    evaluate,
    invalid_output,
    output_pvalue,
)
from .._engine.numbers import alpha_of, finite, finite_mean, number
from .._engine.plain import plain
from .._engine.results import ConditionMetrics, HypothesisResult, build_metrics
from .._engine.runs import RunResult, user_traceback
from .._engine.verdict import Verdict
from .quicklook import quick_look_note, quick_look_verdicts, skipped, unjudgeable


class _Call(NamedTuple):
    """The decision on one verifier output. ``overruled`` holds (p, adjusted p) when the
    family correction turned the verifier's pass into a fail."""

    outcome: str  # "passed" | "failed" | "inconclusive" | "error"
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
    deciding: tuple[str, ...]  # the metric group whose call decided the outcome
    per_group: tuple[str, ...]  # each group's outcome and p-value, when there are several
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


def _judge_output(output: Mapping[str, Any], verifier: str) -> _Call:
    """The decision on one output of ``verifier``, from its ``outcome``, ``passed`` or
    ``significant``; ``error`` when the output cannot decide (see :func:`invalid_output`)."""
    invalid = invalid_output(output, verifier)
    if invalid is not None:
        return _Call("error", invalid)
    if output.get("outcome") == "inconclusive":
        return _Call("inconclusive", str(output.get("reason") or "inconclusive"))
    raw = output.get("p_value", output.get("pvalue"))
    if raw is not None and finite(raw) is None:
        return _Call("failed", f"the p-value is {raw!r}, so nothing can be concluded")
    for key in ("passed", "significant"):
        if key in output:
            why = str(output.get("reason") or f"{key}={bool(output[key])}")
            return _Call("passed" if output[key] else "failed", why)
    keys = ", ".join(repr(k) for k in output) or "none"
    return _Call(
        "error",
        f"the result of verifier {verifier!r} has neither 'passed' nor 'significant' (its "
        f"keys: {keys}); return one of them so the verdict can be decided",
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
    """Failed if any call failed, else error if any could not decide, else inconclusive if
    any was, else passed."""
    for outcome in ("failed", "error", "inconclusive"):
        if any(call.outcome == outcome for call in calls):
            return outcome
    return "passed"


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
    """The outcome of (``hyp``, ``treatment``) and the numbers it rests on: those of the
    metric group that decided it (the first whose call has the combined outcome)."""
    output = result.results[treatment]
    mappings = [as_mapping(o) for o in (output if isinstance(output, list) else [output])]
    adjusted_all = result.adjusted.get(treatment)
    adjusted = adjusted_all if isinstance(adjusted_all, list) else [adjusted_all]
    used = result.replicates[treatment]
    base, treated = metrics[BASELINE_CONDITION], metrics[treatment]
    groups = hyp.metric_groups(list(base.metrics))
    alpha = alpha_of(hyp.verifier, mappings[0])
    calls = [_judge_output(m, hyp.verifier_name) for m in mappings]
    for i, (mapping, p_adj) in enumerate(zip(mappings, adjusted, strict=False)):
        calls[i] = _corrected(calls[i], output_pvalue(mapping), p_adj, alpha)
    outcome = _combine(calls)
    k = next((i for i, c in enumerate(calls) if c.outcome == outcome), 0)
    deciding = groups[k] if k < len(groups) else ()
    # The metrics compared, the deciding group's first: the numbers describe its first metric.
    names = tuple(dict.fromkeys([*deciding, *(m for g in groups for m in g)]))
    first = names[0] if names else ""
    b = [base.metrics[first][i] for i in used] if first in base.metrics else []
    t = [treated.metrics[first][i] for i in used] if first in treated.metrics else []
    main = mappings[k]
    alpha = alpha_of(hyp.verifier, main)
    degenerate = tuple(m["reason"] for m in mappings if m.get("effect_size_name") == "none")
    warned = list(result.warnings.get(treatment, ()))
    p_adj = adjusted[k] if k < len(adjusted) else None
    if result.family_not_run and p_adj is not None and result.correction != "none":
        warned.append(
            f"{result.family_not_run} of the family's {result.family_size} comparisons did "
            f"not run in this session (not selected); each counts as p = 1 in the "
            f"{result.correction} correction, so the adjusted p-value is at least the whole "
            f"family's"
        )
    return _Decision(
        outcome=outcome,
        calls=tuple(calls),
        test=str(main.get("test") or hyp.verifier_name),
        metrics=names,
        first=first,
        deciding=deciding,
        per_group=tuple(  # each group's own outcome and p-value
            f"{', '.join(repr(m) for m in g)}: {c.outcome}, p={number(output_pvalue(m))}"
            for g, c, m in zip(groups, calls, mappings, strict=False)
        )
        if len(mappings) > 1
        else (),
        n_baseline=len(b),
        n_treatment=len(t),
        mean_baseline=finite_mean(b),
        mean_treatment=finite_mean(t),
        pvalue=output_pvalue(main),
        pvalue_adjusted=p_adj if result.family_size > 1 else None,
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
        f"means{f' of {d.first!r}' if len(d.metrics) > 1 else ''} "
        f"{number(d.mean_baseline)} vs {number(d.mean_treatment)}"
    )
    if d.difference is not None and d.ci_low is not None and d.ci_high is not None:
        text += f", difference {number(d.difference)} [{number(d.ci_low)}, {number(d.ci_high)}]"
    elif d.difference is not None:  # no interval: the estimate alone, never "[0, 0]"
        text += f", difference {number(d.difference)}"
    if d.mde is not None:
        text += f", detectable {number(d.mde)}"
    return text


def _message(hyp: Hypothesis, treatment: str, d: _Decision) -> str:
    """The verdict's message: the test and its numbers; why, when it did not pass; notes."""
    numbers = _numbers(d)
    if d.outcome == "passed":
        message = f"{d.test}: {'; '.join([*d.degenerate, numbers])}"
        if d.per_group:
            message += f"\n  per metric: {'; '.join(d.per_group)}"
    else:
        why = "; ".join(_reason(c, d) for c in d.calls if c.outcome == d.outcome)
        said = {
            "inconclusive": f": {why}",
            "error": f" could not decide ({why})",
        }.get(d.outcome, f" did not pass ({why})")
        on = ", ".join(repr(m) for m in d.deciding or (d.first,))
        message = (
            f"hypothesis {hyp.name!r}, treatment {treatment!r} vs baseline on {on}: "
            f"{d.test}{said}\n  {numbers}"
        )
        if d.per_group:
            message += f"\n  per metric: {'; '.join(d.per_group)}"
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
    # The family is the experiment's definition: a comparison whose treatment did not run
    # (not selected) still counts, as p = 1.
    absent = len([t for t in experiment.treatments if t.name not in treatments])
    not_run = absent * sum(len(h.groups or ((),)) for h in experiment.hypotheses)
    too_few = unjudgeable(experiment)  # a quick look too short for a built-in test: skips
    try:
        check_metrics(experiment.hypotheses, metrics, name)
        # A run that recorded no real value of a judged metric: an error, never a verdict on
        # the replicates that did (the rule scripts follow, in _engine/gate.py).
        missing = gaps(experiment.hypotheses, metrics, runs, BASELINE_CONDITION, treatments)
        refused = {h: dict(gap) for h, gap in missing.items()}
        for h, why in too_few.items():
            refused[h] = dict.fromkeys(treatments, why)
        evaluated = evaluate(
            experiment.hypotheses,
            metrics,
            BASELINE_CONDITION,
            treatments,
            experiment.correction or correction,
            refused=refused,
            not_run=not_run,
        )
    except (MissingMetricError, HypothesisError) as exc:
        cause = exc.__cause__
        hint = quick_look_note(experiment) if isinstance(exc, HypothesisError) else ""
        return all_errors(str(exc) + hint + (f"\n\n{user_traceback(cause)}" if cause else ""))
    verdicts = []
    for hyp, result in zip(experiment.hypotheses, evaluated, strict=True):
        for treatment in treatments:
            if hyp.name in too_few:
                verdicts.append(skipped(name, hyp, treatment, too_few[hyp.name]))
                continue
            gap = missing[hyp.name].get(treatment)
            if gap is not None:
                verdicts.append(
                    Verdict(name, hyp.name, treatment, "error", gap, verifier=hyp.verifier_name)
                )
                continue
            if treatment in result.results:
                verdicts.append(_verdict(name, hyp, treatment, result, metrics))
                continue
            message = (
                f"no replicate has the metrics {hyp.metrics_spec!r} in both baseline and "
                f"{treatment!r}, so there is nothing to compare"
            )
            verdicts.append(Verdict(name, hyp.name, treatment, "error", message))
    return quick_look_verdicts(verdicts, experiment)
