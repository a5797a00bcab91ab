"""A group-sequential design: the looks at which an experiment's verdicts may be decided early.

``Experiment.builder(...).replicates(48).sequential(looks=4)`` makes 48 the most replicates
per condition and judges after 12, 24, 36 and 48. The boundaries (alpha spent per look, their
nominal p-value thresholds, the stage-wise adjusted p-values and intervals) are computed in
``pytest_crystallize.stats``; the decision at a look is the report's (``_report/sequential``).
This module holds the design itself: its options, checked when it is made, and its schedule.

Schedule (replicates per condition at each look, the last = the experiment's replicates):

* without ``min_replicates``: look ``k`` of ``K`` is at ``floor(N * k / K + 1/2)`` (``N * k /
  K`` rounded half up), so 48 over 4 looks gives 12, 24, 36, 48 and 10 over 3 gives 3, 7, 10;
* with ``min_replicates = m``: the first look is at ``m`` and the others are equally spaced
  from ``m`` to ``N``, each rounded half up: ``m + floor((N - m) * (k - 1) / (K - 1) + 1/2)``.

Both are strictly increasing whenever the design fits the replicates (at most one look per
replicate; ``m <= N - (K - 1)``), which :meth:`SequentialDesign.problem` checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ExperimentDefinitionError

SPENDING = ("obrien-fleming", "pocock")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class SequentialDesign:
    """Looks at fractions of the replicates where the verdicts may be decided early.

    ``looks``: how many (at least 2; the last uses every replicate). ``spending``: the alpha
    spending function, ``"obrien-fleming"`` (the default, in Lan-DeMets form, so unequal looks
    work) or ``"pocock"``. ``futility``: stop at an interim look when no comparison that has
    not crossed can still pass (non-binding: the efficacy bounds ignore it). ``min_replicates``:
    the replicates per condition at the first look (the others equally spaced after it).
    """

    looks: int
    spending: str = "obrien-fleming"
    futility: bool = True
    min_replicates: int | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.looks) or self.looks < 2:
            msg = (
                f"sequential(looks=...) takes an int >= 2 (the last look uses every "
                f"replicate), got {self.looks!r}; for a single look drop .sequential(...)"
            )
            raise ExperimentDefinitionError(msg)
        if self.spending not in SPENDING:
            msg = (
                f"sequential(spending=...) takes {SPENDING[0]!r} (the default) or "
                f"{SPENDING[1]!r}, got {self.spending!r}"
            )
            raise ExperimentDefinitionError(msg)
        if not isinstance(self.futility, bool):
            msg = f"sequential(futility=...) takes True or False, got {self.futility!r}"
            raise ExperimentDefinitionError(msg)
        if self.min_replicates is not None and (
            not _is_int(self.min_replicates) or self.min_replicates < 2
        ):
            msg = (
                f"sequential(min_replicates=...) takes an int >= 2 (the replicates per "
                f"condition at the first look) or None, got {self.min_replicates!r}"
            )
            raise ExperimentDefinitionError(msg)

    def problem(self, replicates: int) -> str | None:
        """Why this design does not fit ``replicates`` per condition, else ``None``."""
        if replicates < self.looks:
            return (
                f"sequential(looks={self.looks}) needs at least one replicate per look, but "
                f"the experiment has {replicates} replicates; use fewer looks or more "
                f"replicates"
            )
        m = self.min_replicates
        if m is not None and m > replicates - (self.looks - 1):
            return (
                f"sequential(min_replicates={m}) leaves no room for {self.looks - 1} more "
                f"looks within {replicates} replicates; use min_replicates <= "
                f"{replicates - (self.looks - 1)}, fewer looks or more replicates"
            )
        return None

    def schedule(self, replicates: int) -> tuple[int, ...]:
        """The replicates per condition at each look (rounding: see the module docstring)."""
        why = self.problem(replicates)
        if why is not None:
            raise ExperimentDefinitionError(why)
        k_last = self.looks - 1
        if self.min_replicates is None:
            return tuple(
                math.floor(replicates * k / self.looks + 0.5) for k in range(1, self.looks + 1)
            )
        m = self.min_replicates
        return tuple(m + math.floor((replicates - m) * k / k_last + 0.5) for k in range(k_last + 1))

    def fractions(self, replicates: int) -> tuple[float, ...]:
        """The information fraction of each look: its replicates over the last look's."""
        return tuple(n / replicates for n in self.schedule(replicates))

    def describe(self) -> dict[str, Any]:
        """The options as plain data (reports, fingerprints)."""
        return {
            "looks": self.looks,
            "spending": self.spending,
            "futility": self.futility,
            "min_replicates": self.min_replicates,
        }
