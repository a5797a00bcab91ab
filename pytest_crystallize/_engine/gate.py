"""What a hypothesis may judge: every planned run, each with a real number per judged metric.

A verdict computed on the replicates that happened to succeed, or to record a metric, looks
like evidence while resting on less data than planned. So each (hypothesis, treatment) whose
data is incomplete gets ``{"error": message}`` instead of numbers, and the verifier is never
called on it:

* a run of the baseline or of the treatment failed (the first failure quoted is the first in
  (condition, replicate) order, however the runs were spread over workers);
* a run recorded no value of a metric the hypothesis judges;
* a recorded value is not a real number (a numeric string, ``None``, an array).

The other (hypothesis, treatment) pairs are evaluated as usual; p-values are adjusted over
the family of the comparisons that were made.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from .hypotheses import Hypothesis, evaluate
from .numbers import is_bool
from .results import ConditionMetrics, HypothesisResult
from .runs import RunResult


def failures(
    runs: Sequence[RunResult], conditions: Sequence[str], replicates: int
) -> dict[str, str]:
    """``{treatment: message}`` for each treatment whose runs, or the baseline's, failed."""
    order = {name: i for i, name in enumerate(conditions)}
    failed = sorted(
        (r for r in runs if r.error is not None),
        key=lambda r: (order.get(r.condition, len(order)), r.replicate),
    )
    out: dict[str, str] = {}
    for treatment in conditions[1:]:
        mine = [r for r in failed if r.condition in (conditions[0], treatment)]
        if not mine:
            continue
        counts: dict[str, int] = {}
        for run in mine:
            counts[run.condition] = counts.get(run.condition, 0) + 1
        shown = " and ".join(
            f"{n} of {replicates} runs of condition {c!r}" for c, n in counts.items()
        )
        first = next(r.error for r in mine if r.error is not None)
        out[treatment] = (
            f"{shown} failed, so no verdict is given on the runs that succeeded; first "
            f"failure: replicate {first.replicate} of condition {first.condition!r}, "
            f"{first.stage} {first.where!r} raised {first.exc_type}: {first.message} "
            f"(see result.errors)"
        )
    return out


def _is_real(value: Any) -> bool:
    """An int, float, bool or numpy number: not a str, None, array or other container."""
    return isinstance(value, numbers.Real) or is_bool(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def incomplete(
    hyp: Hypothesis,
    metrics: Mapping[str, ConditionMetrics],
    runs: Mapping[tuple[str, int], RunResult],
    baseline: str,
    treatment: str,
) -> str | None:
    """Why ``hyp`` cannot judge ``treatment`` from these runs' values (``None``: it can)."""
    groups = hyp.metric_groups(list(metrics[baseline].metrics))
    judged = list(dict.fromkeys(m for group in groups for m in group))
    for condition in (baseline, treatment):
        for replicate in range(len(metrics[condition].seeds)):
            run = runs.get((condition, replicate))
            for metric in judged:
                values = run.metrics.get(metric) if run is not None else None
                if not values:
                    return (
                        f"replicate {replicate} of condition {condition!r} recorded no value "
                        f"of metric {metric!r}, which hypothesis {hyp.name!r} judges, so no "
                        f"verdict is given on the other replicates; record it in every run "
                        f"(return (data, {{{metric!r}: value}}) or ctx.metrics.add)"
                    )
                bad = [v for v in values if not _is_real(v)][:1]
                if bad:
                    return (
                        f"metric {metric!r} of condition {condition!r}, replicate "
                        f"{replicate} is {_shown(bad[0])} ({type(bad[0]).__name__}), not a real "
                        f"number, so hypothesis {hyp.name!r} cannot judge it; record one "
                        f"int or float per value (for example float(x), or float(x.mean()) "
                        f"for an array)"
                    )
    return None


def gaps(
    hypotheses: Sequence[Hypothesis],
    metrics: Mapping[str, ConditionMetrics],
    runs: Sequence[RunResult],
    baseline: str,
    treatments: Sequence[str],
    known: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """``{hypothesis: {treatment: why}}`` for each pair whose data is incomplete: the
    failures in ``known`` (``{treatment: why}``) first, then a missing or unreal value."""
    by_key = {(r.condition, r.replicate): r for r in runs}
    out: dict[str, dict[str, str]] = {}
    for hyp in hypotheses:
        mine = out[hyp.name] = dict(known or {})
        for name in treatments:
            if name not in mine:
                why = incomplete(hyp, metrics, by_key, baseline, name)
                if why is not None:
                    mine[name] = why
    return out


def evaluate_complete(
    hypotheses: Sequence[Hypothesis],
    metrics: Mapping[str, ConditionMetrics],
    runs: Sequence[RunResult],
    conditions: Sequence[str],
    replicates: int,
    correction: str,
) -> tuple[HypothesisResult, ...]:
    """Every hypothesis for every treatment of ``conditions`` (the baseline first): the
    verifier's output where the data is complete, ``{"error": why}`` where it is not."""
    baseline, treatments = conditions[0], list(conditions[1:])
    failed = failures(runs, conditions, replicates)
    refused = gaps(hypotheses, metrics, runs, baseline, treatments, failed)
    return evaluate(hypotheses, metrics, baseline, treatments, correction, refused)
