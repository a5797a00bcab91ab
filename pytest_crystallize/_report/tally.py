"""The session's verdicts counted and ordered by severity, as every report shows them.

A verdict falls in one bucket: its outcome, except that an ungated comparison with a saved
baseline that *regressed* (it counts as passed) has a bucket of its own, between the problems
and the skips. The Markdown summary, the HTML report and the JSON report's ``tally`` use the
same buckets, order and words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Most severe first: the order of the rows in every report.
ORDER = ("failed", "error", "inconclusive", "regressed", "skipped", "passed")
ICONS = {
    "failed": "❌",
    "error": "💥",
    "inconclusive": "⚠️",
    "regressed": "📉",
    "skipped": "⏭️",
    "passed": "✅",
}


def bucket(verdict: Mapping[str, Any]) -> str:
    """The bucket of one verdict (a ``Verdict.to_json()`` mapping)."""
    if verdict.get("comparison") == "regressed":
        return "regressed"
    outcome = str(verdict.get("outcome", ""))
    return outcome if outcome in ORDER else "passed"


def severity(verdict: Mapping[str, Any]) -> int:
    """A sort key: 0 for failed, up to ``len(ORDER) - 1`` for passed."""
    return ORDER.index(bucket(verdict))


def tally(experiments: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """``{"failed": 2, ..., "passed": 7, "verdicts": 10, "experiments": 3}``: every bucket,
    zero or not, then the totals."""
    counts = dict.fromkeys(ORDER, 0)
    for experiment in experiments:
        for verdict in experiment.get("verdicts", ()):
            counts[bucket(verdict)] += 1
    return {
        **counts,
        "verdicts": sum(counts.values()),
        "experiments": len(experiments),
    }


def tally_line(counts: Mapping[str, int]) -> str:
    """``❌ 2 failed · ⚠️ 1 inconclusive · ✅ 7 passed · 3 experiments``: the buckets that are
    not empty, most severe first, then the experiments (``no verdicts`` when there are none)."""
    parts = [f"{ICONS[name]} {counts[name]} {name}" for name in ORDER if counts.get(name)]
    if not parts:
        parts = ["no verdicts"]
    experiments = counts.get("experiments", 0)
    parts.append(f"{experiments} experiment{'' if experiments == 1 else 's'}")
    return " · ".join(parts)
