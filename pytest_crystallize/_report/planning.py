"""``--crystallize-plan``: the runs are a pilot, and each verdict says how many replicates
would detect an effect."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .._engine.context import BASELINE_CONDITION
from .._engine.experiment import Experiment
from .._engine.results import build_metrics
from .._engine.runs import RunResult
from .._engine.verdict import Verdict
from ..stats._power import pilot_plan


def planned(
    verdicts: Sequence[Verdict],
    experiment: Experiment,
    runs: Sequence[RunResult],
    effect: tuple[float, bool],
) -> list[Verdict]:
    """``--crystallize-plan``: the runs are a pilot; each verdict becomes a skip that says how
    many replicates detect ``effect`` (absolute, or relative to the baseline mean) with 80%
    power, from the standard deviation of the pilot's paired differences; the numbers are the
    verdict's ``plan``."""
    conditions = [BASELINE_CONDITION, *{v.treatment: None for v in verdicts}]
    metrics = build_metrics(runs, conditions, experiment.replicates)
    out = []
    for verdict in verdicts:
        if not verdict.metrics or verdict.outcome == "error":
            out.append(verdict)
            continue
        metric = verdict.metrics[0]
        base, treated = metrics[BASELINE_CONDITION], metrics[verdict.treatment]
        pilot = pilot_plan(
            base.metrics.get(metric, []),
            treated.metrics.get(metric, []),
            metric,
            effect,
            alpha=verdict.alpha or 0.05,
            mde=verdict.mde,
        )
        out.append(replace(verdict, outcome="skipped", message=pilot.message, plan=pilot.to_json()))
    return out
