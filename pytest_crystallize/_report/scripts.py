"""The judge of script runs: ``Experiment.run()`` gets its verdicts from :func:`.judge.judge`,
the judge ``pytest --crystallize`` uses, so a script and a pytest session decide and word
every verdict the same way.

Importing this module registers :func:`judge_result` with the engine
(:func:`~pytest_crystallize._engine.judging.register_judge`); ``pytest_crystallize`` imports it
when a name that runs experiments (``Experiment``, ``ExperimentBuilder``, ``ExperimentGraph``)
is first used. The judge evaluates the hypotheses again on the runs (the run itself already
did, for ``Result.metrics.hypotheses``), so every verifier runs twice: about 1.5 ms per
comparison for a built-in t-test, the whole time again for a resampling one.

It registers :func:`judge_look_result` too: a sequential design's script run asks it, after
each look's runs, whether to stop (:func:`.sequential.judge_look`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .._engine.context import BASELINE_CONDITION
from .._engine.experiment import Experiment
from .._engine.judging import register_judge, register_look_judge
from .._engine.results import Result
from .._engine.runs import RunResult
from .._engine.verdict import Verdict
from .judge import judge
from .sequential import judge_look


def judge_result(experiment: Experiment, result: Result) -> tuple[Verdict, ...]:
    """The verdicts on ``result``, a run of ``experiment``: every (hypothesis, treatment),
    named after the experiment as pytest names it when the file binds it to its own name."""
    treatments = [c for c in result.conditions if c != BASELINE_CONDITION]
    verdicts = judge(
        experiment.artifact_name,
        experiment,
        result.runs,
        treatments,
        experiment.correction or "holm",
    )
    return tuple(verdicts)


def judge_look_result(
    experiment: Experiment, runs: Sequence[RunResult], look: int
) -> tuple[bool, tuple[Verdict, ...]]:
    """The decision at ``look`` of a sequential script run: stop, and the look's verdicts
    (:func:`.sequential.judge_look`, which the pytest session's looks use too)."""
    treatments = [t.name for t in experiment.treatments]
    decision = judge_look(
        experiment.artifact_name,
        experiment,
        runs,
        treatments,
        experiment.correction or "holm",
        look,
    )
    return decision.stop, tuple(decision.verdicts)


register_judge(judge_result)
register_look_judge(judge_look_result)
