"""How verdicts look: status words, the terminal summary table."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from .._engine.cache import KEY_ENV, CacheStats, key_file
from .._engine.results import build_metrics
from .._engine.table import table, verdict_values
from .._engine.verdict import Verdict
from .looks import decision_line
from .tracking import Tracked

RUNS_ATTR = "crystallize_runs"
VERDICT_ATTR = "crystallize_verdict"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def verdict_status(report: pytest.TestReport) -> tuple[str, str, Any] | None:
    """Verbose words with the p-value for verdict reports, and ``PASSED (cached)`` for chunks
    whose every cacheable step was served from the cache (counts and exit code unchanged)."""
    if report.when != "call":
        return None
    runs = getattr(report, RUNS_ATTR, None)
    if (
        runs
        and report.passed
        and all(r["cache"] is not None and r["cache"][0] > 0 and r["cache"][1] == 0 for r in runs)
    ):
        return "passed", ".", ("PASSED (cached)", {"green": True})
    data = getattr(report, VERDICT_ATTR, None)
    if data is None:
        return None
    if hasattr(report, "wasxfail"):  # an xfail mark: pytest's words, with the p-value
        category, letter, word = (
            ("xpassed", "X", "XPASS") if report.passed else ("xfailed", "x", "XFAIL")
        )
        return category, letter, (f"{word} p={_p(data['pvalue'])}", {"yellow": True})
    word = "PASSED" if report.passed else "FAILED"
    if data["outcome"] == "inconclusive":
        word = f"INCONCLUSIVE ({word.lower()})"
    letter = "." if report.passed else "F"
    markup = {"green": True} if report.passed else {"red": True}
    return report.outcome, letter, (f"{word} p={_p(data['pvalue'])}", markup)


def header_line(
    *,
    correction: str,
    replicates: int | None,
    cache_root: Path | None,
    cache_off: str,
    rootpath: Path,
    workers: int,
) -> str:
    """The session header's line: the settings a rerun needs to reproduce this one.

    The family correction, the replicates override, where steps are cached and where the
    cache's signing key comes from (never the key), and how many chunks each condition is cut
    into (:func:`~.layout.chunk_ranges`).
    """
    if cache_root is None:
        cache = f"cache off ({cache_off})"
    else:
        shown = (
            cache_root.relative_to(rootpath) if cache_root.is_relative_to(rootpath) else cache_root
        )
        key = f"${KEY_ENV}" if os.environ.get(KEY_ENV) else f"the per-user key file {key_file()}"
        cache = f"cache {shown.as_posix()} signed with {key}"
    chunks = (
        "1 (one process)"
        if workers <= 1
        else f"min(replicates, ceil({4 * workers}/conditions)) ({workers} workers)"
    )
    override = "none" if replicates is None else str(replicates)
    return (
        f"crystallize: correction {correction}; replicates override {override}; {cache}; "
        f"chunks per condition {chunks}"
    )


def replicate_values(tracked: Iterable[Tracked]) -> dict[int, str]:
    """``-vv``: the per-replicate values line of each reported verdict, by ``id(verdict)``."""
    lines: dict[int, str] = {}
    for t in tracked:
        if not t.reported:
            continue
        conditions = [c for c, _ in t.experiment.conditions()]
        metrics = build_metrics(t.runs, conditions, t.experiment.replicates)
        for _, _, verdict in t.reported:
            line = verdict_values(verdict, metrics)
            if line is not None:
                lines[id(verdict)] = line
    return lines


def write_summary(
    terminal: Any,
    verdicts: Sequence[Verdict],
    cache: CacheStats,
    values: Mapping[int, str] | None = None,
) -> None:
    """The ``crystallize`` section: one row per verdict (with ``values``, from
    :func:`replicate_values`, below it), notes (``!``) and the sequential designs' decisions
    below, cache counts."""
    terminal.write_sep("=", "crystallize", bold=True)
    if cache.hits or cache.misses:
        rejected = f" ({cache.rejected} rejected: bad signature)" if cache.rejected else ""
        terminal.write_line(
            f"step cache: {cache.hits} hits, {cache.misses} misses{rejected}, "
            f"{cache.bytes_written / 1e6:.1f} MB written, {cache.seconds_saved:.2f} s saved"
        )
    if not verdicts:
        return
    header, *rows = table(verdicts)
    terminal.write_line(header, bold=True)
    for verdict, line in zip(verdicts, rows, strict=True):
        terminal.write_line(line, **_MARKUP.get(verdict.shown, {"yellow": True}))
        if values and id(verdict) in values:
            terminal.write_line(values[id(verdict)])
    for v in verdicts:
        for note in v.notes:
            terminal.write_line(f"! {v.name}: {note}", yellow=True)
    decisions = _decisions(terminal)
    if decisions:
        terminal.write_line("")  # a paragraph of their own, after the rows and their notes
    for line in decisions:
        terminal.write_line(line)


def _decisions(terminal: Any) -> list[str]:
    """A line per sequential experiment judged in the session (:func:`.looks.decision_line`),
    from the verdict board of the terminal reporter's session, if any."""
    config = getattr(terminal, "config", None)
    board = config.pluginmanager.get_plugin("crystallize-verdicts") if config else None
    tracked: Mapping[str, Tracked] = getattr(board, "tracked", {})
    pilot = getattr(board, "plan_effect", None) is not None
    return [line for t in tracked.values() if (line := decision_line(t, pilot)) is not None]


_MARKUP: dict[str, dict[str, bool]] = {
    "passed": {"green": True},
    "unchanged": {"green": True},
    "improved": {"green": True},
    "failed": {"red": True},
    "error": {"red": True},
}


class LiveProgress:
    """``experiment: 24/96 runs, about 8 s left`` on its own terminal line, rewritten in place.

    Only without xdist (workers cannot write to the terminal), on a terminal, at the default
    verbosity (``-q`` stays quiet, ``-v`` prints a line per chunk anyway); shown once an
    experiment has run for two seconds, so quick ones stay silent. A sequential design
    decided early ends with ``experiment: decided at look 1 of 4 after 24 of 96 runs in 1.2 s``.
    """

    _DELAY = 2.0
    _EVERY = 0.5

    def __init__(self, terminal: Any, capture: Any, name: str, total: int) -> None:
        self.terminal = terminal
        self.capture = capture
        self.name = name
        self.total = total
        self.done = 0
        self.start = time.perf_counter()
        self.shown = 0.0
        self.elapsed = 0.0  # at the last run
        self.finished = False  # said that a sequential design was decided

    @classmethod
    def for_session(cls, config: pytest.Config, name: str, total: int) -> LiveProgress | None:
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        if (
            terminal is None
            or hasattr(config, "workerinput")
            or config.get_verbosity() != 0
            or not (terminal.isatty() if callable(terminal.isatty) else terminal.isatty)
        ):
            return None
        capture = config.pluginmanager.get_plugin("capturemanager")
        return cls(terminal, capture, name, total)

    def advance(self) -> None:
        self.done += 1
        now = time.perf_counter()
        elapsed = self.elapsed = now - self.start
        if elapsed < self._DELAY or (now - self.shown < self._EVERY and self.done < self.total):
            return
        left = elapsed / self.done * (self.total - self.done)
        text = f"{self.name}: {self.done}/{self.total} runs, about {left:.0f} s left"
        if self.done >= self.total:
            text = f"{self.name}: {self.total} runs in {elapsed:.1f} s"
        self._show(text)
        self.shown = now

    def decided(self, look: int, looks: int) -> None:
        """A sequential design was decided at ``look`` (before its last): its line, if shown,
        says so once, with the runs and time up to its last run, instead of ``24/96 runs``."""
        if not self.shown or self.finished:
            return
        self.finished = True
        self._show(
            f"{self.name}: decided at look {look} of {looks} after {self.done} of "
            f"{self.total} runs in {self.elapsed:.1f} s"
        )

    def _show(self, text: str) -> None:
        with self.capture.global_and_fixture_disabled() if self.capture else nullcontext():
            if not self.shown:
                self.terminal.ensure_newline()  # pytest starts its next line of results afresh
            self.terminal.rewrite(text, erase=True)
