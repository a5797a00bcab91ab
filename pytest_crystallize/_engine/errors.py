"""The exception tree of pytest-crystallize.

::

    CrystallizeError
    ├── CrystallizeUsageError (also TypeError)     a decorator or builder was called wrongly
    ├── ExperimentDefinitionError (also ValueError) an experiment cannot run as defined
    │   └── ShippingError                           part of it cannot be sent to a worker process
    ├── ContextMutationError                        a context key was written twice
    ├── PipelineExecutionError                      a step raised (wraps the user's exception)
    ├── MissingMetricError (also KeyError)          a hypothesis names a metric no run recorded
    ├── HypothesisError                             a verifier or ranker raised or returned junk
    └── ExperimentRunError                          raised by Result.raise_for_errors()

Every message names the culprit (experiment, step, condition, replicate), echoes the bad value
with ``!r`` and says what to do instead. Errors raised after runs were computed carry the
:class:`~pytest_crystallize.Result` on ``.result``, so nothing computed is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import Result


class CrystallizeError(Exception):
    """Base class of every error raised by pytest-crystallize."""


class CrystallizeUsageError(CrystallizeError, TypeError):
    """A decorator, factory or builder method was called with arguments it cannot take."""


class ExperimentDefinitionError(CrystallizeError, ValueError):
    """The experiment's definition is inconsistent; raised by ``build()`` and ``validate()``."""


class ShippingError(ExperimentDefinitionError):
    """Part of an experiment cannot be pickled for a worker process."""


class ContextMutationError(CrystallizeError):
    """A key of a :class:`~pytest_crystallize.FrozenContext` was set a second time."""


class PipelineExecutionError(CrystallizeError):
    """A step raised; the user's exception is ``original_exception`` (and ``__cause__``)."""

    def __init__(self, step_name: str, original_exception: BaseException) -> None:
        self.step_name = step_name
        self.original_exception = original_exception
        super().__init__(
            f"Step {step_name!r} failed: {type(original_exception).__name__}: {original_exception}"
        )


class _CarriesResult(CrystallizeError):
    """An error raised after the runs were computed: they stay available on ``.result``."""

    result: Result | None = None


class MissingMetricError(_CarriesResult, KeyError):
    """A hypothesis needs a metric that no run recorded."""

    def __init__(self, message: str, metric: str) -> None:
        self.metric = metric
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class HypothesisError(_CarriesResult):
    """A verifier or a ranker raised, or a verifier returned something unusable."""


class ExperimentRunError(_CarriesResult):
    """Some runs of an experiment failed; raised by ``Result.raise_for_errors()``."""
