"""What the session owner knows of one experiment: its chunks, what came back, what is missing.

A sequential experiment is judged look by look (:mod:`.looks`): while look k is judged, and
once it decided the experiment, ``horizon`` is k and everything here sees only the chunks of
the looks up to k (the runs of later chunks that had started are ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._engine.context import BASELINE_CONDITION
from .._engine.experiment import Experiment
from .._engine.runs import RunResult
from .._engine.verdict import Verdict
from .._store.baselines import record, save
from .._store.compare import Comparing, compare


@dataclass
class Tracked:
    """One experiment seen by the controller: its chunks and what has come back."""

    path: Path
    name: str
    experiment: Experiment
    all_chunks: dict[str, tuple[str, range]]  # chunk node id -> (condition, replicates)
    selected: set[str] = field(default_factory=set)
    done: dict[str, str | None] = field(default_factory=dict)  # node id -> problem or None
    chunk_runs: dict[str, list[RunResult]] = field(default_factory=dict)  # the last attempt's
    stopped: dict[str, tuple[int, str, str, str]] = field(default_factory=dict)
    retrying: set[str] = field(default_factory=set)  # rerun by pytest-rerunfailures
    judged: bool = False
    complete: bool = False  # judged on every run, none failed: worth saving as a baseline
    stored: Mapping[str, Any] | None = None  # the saved baseline to compare with
    reported: list[tuple[str, str, Verdict]] = field(default_factory=list)
    # The selected verdicts, from the chunks' reports: (hypothesis, treatment) -> the xfail
    # mark's [reason, strict] or None. None until a report said (then: every verdict).
    wanted: dict[tuple[str, str], list[Any] | None] | None = None
    key: str = ""  # <file>::<experiment>, the experiment's node id
    looks: dict[str, int] = field(default_factory=dict)  # chunk node id -> its look (else 1)
    horizon: int | None = None  # the last look in view (None: every chunk)
    looks_judged: int = 0  # the looks of a sequential design judged so far
    stopped_at: int | None = None  # the look that decided a sequential design
    stop_reason: str | None = None  # why it decided there (``LookDecision.reason``)

    @property
    def stopped_early(self) -> bool:
        """Decided at a look before the last of its sequential design: later ones never ran."""
        design = self.experiment.sequential
        return design is not None and self.stopped_at is not None and self.stopped_at < design.looks

    def look_of(self, nodeid: str) -> int:
        return self.looks.get(nodeid, 1)

    def in_view(self, nodeid: str) -> bool:
        """Whether a chunk counts: it belongs to a look up to the ``horizon``."""
        return self.horizon is None or self.look_of(nodeid) <= self.horizon

    @property
    def chunks(self) -> dict[str, tuple[str, range]]:
        """``all_chunks`` in view."""
        return {n: c for n, c in self.all_chunks.items() if self.in_view(n)}

    @property
    def runs(self) -> list[RunResult]:
        """Every run in view that came back, in the experiment's chunk order."""
        return [r for n in self.chunks for r in self.chunk_runs.get(n, ())]

    def conditions_selected(self) -> list[str]:
        names = dict.fromkeys(c for c, _ in self.all_chunks.values())
        return [c for c in names if self._has(c)]

    def _has(self, condition: str) -> bool:
        return any(self.all_chunks[n][0] == condition for n in self.selected)

    def missing(self) -> list[tuple[str, int]]:
        """(condition, replicate) of each selected replicate that reported no run."""
        ran = {(r.condition, r.replicate) for r in self.runs}
        return [
            (condition, replicate)
            for n, (condition, replicates) in self.chunks.items()
            if n in self.selected
            for replicate in replicates
            if (condition, replicate) not in ran
        ]

    def treatments(self) -> list[str]:
        return [c for c in self.conditions_selected() if c != BASELINE_CONDITION]

    def compares(self, label: str | None) -> bool:
        """Whether its baseline condition is compared with the saved baseline ``label``."""
        return bool(label) and self._has(BASELINE_CONDITION)

    def planned(self, label: str | None) -> list[tuple[str, str]]:
        """The (hypothesis, treatment) pairs of the verdicts this experiment will report.

        Compared with a saved baseline: one per metric the baseline condition saved, or one
        named after the condition (``vs-<label>::baseline``) when the baseline does not hold
        the experiment.
        """
        pairs = (
            list(self.wanted)
            if self.wanted is not None
            else [(h.name, t) for h in self.experiment.hypotheses for t in self.treatments()]
        )
        if self.compares(label) and self.stored is None:
            pairs.append((f"vs-{label}", BASELINE_CONDITION))
        elif self.compares(label) and self.stored is not None:
            saved = self.stored["conditions"].get(BASELINE_CONDITION, {}).get("metrics", {})
            pairs += [(f"vs-{label}", metric) for metric in sorted(saved)]
        return pairs

    def recorded(self) -> set[str]:
        """The metrics its baseline condition's runs recorded in this session."""
        return {m for r in self.runs if r.condition == BASELINE_CONDITION for m in r.metrics}


def comparisons(tracked: Tracked, comparing: Comparing) -> list[Verdict]:
    """The verdicts comparing a judged experiment with the saved baseline: one per metric, or
    the one saying the baseline does not hold it, or errors when its runs failed."""
    if not tracked.compares(comparing.label):
        return []
    if tracked.stored is None:
        return [comparing.missing_verdict(tracked.name)]
    if not tracked.complete:
        return [
            comparing.verdict(tracked.name, metric, "error", "runs failed; nothing to compare")
            for hypothesis, metric in tracked.planned(comparing.label)
            if hypothesis == comparing.hypothesis
        ]
    return compare(tracked.name, tracked.experiment, tracked.runs, tracked.stored, comparing)


def incomplete(tracked: Tracked) -> tuple[str, str]:
    """The outcome and message of verdicts some of whose replicates never ran.

    A step that skipped skips the verdicts (saying where, unless every chunk skipped at its
    first replicate: then it is an ordinary skip); anything else that stopped a replicate makes
    them errors, naming the first such replicate in (condition, replicate) order.
    """
    conditions = dict.fromkeys(c for c, _ in tracked.all_chunks.values())
    order = {c: i for i, c in enumerate(conditions)}
    stops = sorted(
        (order[tracked.all_chunks[n][0]], replicate, tracked.all_chunks[n][0], kind, why, text)
        for n, (replicate, kind, why, text) in tracked.stopped.items()
        if tracked.in_view(n)
    )
    failures = [s for s in stops if s[3] != "skipped"]
    if failures:
        _, replicate, condition, _, why, text = failures[0]
        detail = f"\n{text}" if text else ""
        return "error", (
            f"replicate {replicate} of condition {condition!r} stopped ({why}), so its chunk's "
            f"other replicates did not run; no verdict is given on partial data{detail}"
        )
    if stops:
        _, replicate, condition, _, why, _ = stops[0]
        selected = [n for n in tracked.selected if tracked.in_view(n)]
        first_only = len(stops) == len(selected) and not tracked.runs
        if first_only:
            return "skipped", why
        return "skipped", (
            f"replicate {replicate} of condition {condition!r} skipped ({why}); no verdict is "
            f"given on the replicates that ran"
        )
    condition, replicate = tracked.missing()[0]
    return "error", (
        f"replicate {replicate} of condition {condition!r} reported no result; no verdict is "
        f"given on partial data"
    )


def save_whole(path: Path, tracked: Mapping[str, Tracked]) -> list[str]:
    """Save as a baseline the experiments that ran whole (every replicate selected, run and
    successful), merged into what the file holds (also what another session saved there
    meanwhile); return the names of the others, which it leaves out (a sequential design
    decided before its last look too). Without any experiment to save, the file is left as it
    is (or not made)."""
    whole = {
        k: t
        for k, t in tracked.items()
        if t.complete and set(t.all_chunks) == t.selected and not t.stopped_early
    }
    if whole:
        records = {
            k: record(t.experiment, t.runs, t.conditions_selected()) for k, t in whole.items()
        }
        save(path, records)
    return sorted(t.name for k, t in tracked.items() if k not in whole)
