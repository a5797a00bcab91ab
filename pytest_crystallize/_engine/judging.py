"""The slot for the judge that gives a script run its verdicts.

``Experiment.run()`` ends with ``Result.verdicts``: the same verdicts, with the same
decisions and words, that ``pytest --crystallize`` prints. The one judge that decides them
lives in ``_report``, a wing above the engine, which the engine may not import; so the judge
registers itself here instead (:func:`register_judge`), when ``_report.scripts`` is imported.
The public API (``pytest_crystallize``) imports that module as soon as a name that can run an
experiment is first used, so every script has it. Without a registered judge a run has no
verdicts and ``Result.summary()`` says so.

A sequential design is judged look by look: the report registers a look judge too
(:func:`register_look_judge`), which decides whether the runs so far stop the experiment.
Without one a sequential run goes on to its last look and gets the plain judge's verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .experiment import Experiment
    from .results import Result
    from .runs import RunResult
    from .verdict import Verdict

Judge = Callable[["Experiment", "Result"], "tuple[Verdict, ...]"]
# fn(experiment, runs so far, look (1-based)) -> (stop, verdicts of this look)
LookJudge = Callable[["Experiment", "Sequence[RunResult]", int], "tuple[bool, tuple[Verdict, ...]]"]


class JudgeSlot:
    """The registered judges, or None: one per process, the last registered wins."""

    __slots__ = ("judge", "look_judge")

    def __init__(self) -> None:
        self.judge: Judge | None = None
        self.look_judge: LookJudge | None = None


SLOT = JudgeSlot()


def register_judge(fn: Judge) -> None:
    """Make ``fn(experiment, result) -> tuple[Verdict, ...]`` the judge of script runs: it
    gets the experiment as run (with the call's overrides) and its result, without verdicts."""
    if not callable(fn):
        msg = (
            f"register_judge(fn) takes a function fn(experiment, result) -> tuple of "
            f"Verdicts, got {fn!r}"
        )
        raise TypeError(msg)
    SLOT.judge = fn


def judged(experiment: Experiment, result: Result) -> tuple[Verdict, ...]:
    """The registered judge's verdicts on ``result`` (empty when none is registered)."""
    if SLOT.judge is None:
        return ()
    return tuple(SLOT.judge(experiment, result))


def register_look_judge(fn: LookJudge) -> None:
    """Make ``fn(experiment, runs, look) -> (stop, verdicts)`` the judge of a sequential
    script run's looks: ``runs`` are those run so far, ``look`` is 1-based."""
    if not callable(fn):
        msg = (
            f"register_look_judge(fn) takes a function fn(experiment, runs, look) -> "
            f"(stop, tuple of Verdicts), got {fn!r}"
        )
        raise TypeError(msg)
    SLOT.look_judge = fn


def look_judged(
    experiment: Experiment, runs: Sequence[RunResult], look: int
) -> tuple[bool, tuple[Verdict, ...]] | None:
    """The registered look judge's decision at ``look`` (``None`` when none is registered)."""
    if SLOT.look_judge is None:
        return None
    stop, verdicts = SLOT.look_judge(experiment, runs, look)
    return bool(stop), tuple(verdicts)
