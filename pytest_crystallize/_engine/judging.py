"""The slot for the judge that gives a script run its verdicts.

``Experiment.run()`` ends with ``Result.verdicts``: the same verdicts, with the same
decisions and words, that ``pytest --crystallize`` prints. The one judge that decides them
lives in ``_report``, a wing above the engine, which the engine may not import; so the judge
registers itself here instead (:func:`register_judge`), when ``_report.scripts`` is imported.
The public API (``pytest_crystallize``) imports that module as soon as a name that can run an
experiment is first used, so every script has it. Without a registered judge a run has no
verdicts and ``Result.summary()`` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .experiment import Experiment
    from .results import Result
    from .verdict import Verdict

Judge = Callable[["Experiment", "Result"], "tuple[Verdict, ...]"]


class JudgeSlot:
    """The registered judge, or None: one per process, the last registered wins."""

    __slots__ = ("judge",)

    def __init__(self) -> None:
        self.judge: Judge | None = None


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
