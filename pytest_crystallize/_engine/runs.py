"""One run's result, and its error: plain data that any executor ships back."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from .plain import plain

# The whole package: its frames are hidden from the tracebacks users read.
_PACKAGE_DIR = str(Path(__file__).parent.parent)


def user_traceback(exc: BaseException) -> str:
    """Format ``exc``'s traceback without pytest-crystallize's own frames."""
    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list(
        [frame for frame in te.stack if not frame.filename.startswith(_PACKAGE_DIR)]
    )
    return "".join(te.format())


@final
@dataclass(frozen=True, slots=True)
class RunError:
    """Why one run (condition x replicate) failed.

    Attributes
    ----------
    condition, replicate:
        The run.
    stage:
        ``"treatment"``, ``"data source"``, ``"step"`` or ``"plugin"``.
    where:
        The name of the treatment, data source, step or hook that raised.
    exc_type, message, traceback:
        The user's exception, as text (the traceback without framework frames).
    exception:
        The exception object itself when it could travel back from the worker, else ``None``.
    """

    condition: str
    replicate: int
    stage: str
    where: str
    exc_type: str
    message: str
    traceback: str
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_exception(
        cls, exc: BaseException, condition: str, replicate: int, stage: str, where: str
    ) -> RunError:
        """The record of ``exc``, raised at ``stage``/``where`` in this run."""
        return cls(
            condition=condition,
            replicate=replicate,
            stage=stage,
            where=where,
            exc_type=type(exc).__qualname__,
            message=str(exc),
            traceback=user_traceback(exc),
            exception=exc,
        )

    @property
    def key(self) -> str:
        """``"<condition>_rep_<replicate>"``, the key of ``Result.errors``."""
        return f"{self.condition}_rep_{self.replicate}"

    def summary(self) -> str:
        """One line: what raised what, in which condition and replicate."""
        return (
            f"{self.stage} {self.where!r} raised {self.exc_type}: {self.message} "
            f"(condition {self.condition!r}, replicate {self.replicate})"
        )


@final
@dataclass(frozen=True, slots=True)
class RunResult:
    """What one run produced, as plain data that travels between processes.

    ``metrics`` maps each metric to the values recorded in this run (usually one);
    ``artifacts`` lists ``(step, file name, path)`` of the files written.
    """

    condition: str
    replicate: int
    seed: int
    metrics: Mapping[str, tuple[Any, ...]]
    artifacts: tuple[tuple[str, str, str], ...] = ()
    error: RunError | None = None
    duration: float = 0.0
    cache: tuple[int, int, int, int, float] | None = None  # hits, misses, rejected, bytes, s

    @property
    def ok(self) -> bool:
        """Whether the run finished without error."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """Plain data (numbers, str, lists, dicts) that pytest-xdist can send between processes."""
        error = self.error
        return {
            "condition": self.condition,
            "replicate": self.replicate,
            "seed": self.seed,
            "metrics": {k: [plain(v) for v in values] for k, values in self.metrics.items()},
            "artifacts": [list(a) for a in self.artifacts],
            "error": None
            if error is None
            else {
                "stage": error.stage,
                "where": error.where,
                "exc_type": error.exc_type,
                "message": error.message,
                "traceback": error.traceback,
            },
            "duration": self.duration,
            "cache": None if self.cache is None else list(self.cache),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        """The RunResult that ``to_json()`` described."""
        error = data["error"]
        condition, replicate = data["condition"], data["replicate"]
        return cls(
            condition=condition,
            replicate=replicate,
            seed=data["seed"],
            metrics={k: tuple(v) for k, v in data["metrics"].items()},
            artifacts=tuple((a[0], a[1], a[2]) for a in data["artifacts"]),
            error=None if error is None else RunError(condition, replicate, **error),
            duration=data["duration"],
            cache=None if data.get("cache") is None else tuple(data["cache"]),
        )
