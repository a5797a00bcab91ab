"""Progress in logs: ``crystallize: experiment_a.py::exp: 24/96 runs, 1 failed, about 40 s left``.

A sequential design's line names the look it runs and counts to the end of the design while
undecided (``30/96 runs (look 2 of 4; stops at the first look that decides), 0 failed, up to
about 5 s left``); once a look decides it, it prints nothing more.

Without a terminal (CI logs, pytester), the process that owns the session prints a line per
running experiment at most every ``crystallize_progress_interval`` seconds (0 turns it off);
on a terminal :class:`~.terminal.LiveProgress` rewrites one line instead.

Without xdist a chunk tells :class:`ProgressLines` of each run directly. An xdist worker sends
the counts of its running chunk as a passed *setup* report of that chunk, carrying
``crystallize_progress`` (at most every half interval): xdist forwards it like any report,
and every consumer ignores a passed setup report: the terminal shows nothing (empty status),
JUnit XML adds its zero duration to the chunk's testcase, ``--lf``, ``--sw``, ``-x`` and
``--maxfail`` count failures only, the verdict board follows setup reports that failed or
skipped. A chunk's call report then gives its exact counts (its runs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import pytest

from .options import setting
from .terminal import RUNS_ATTR
from .tracking import Tracked

PROGRESS_ATTR = "crystallize_progress"  # [runs done, runs failed] of the chunk so far
INTERVAL_KEY = "crystallize_progress_interval"  # in workerinput: 0 when nobody prints
PLUGIN_NAME = "crystallize-progress"

Sink = Callable[[pytest.Item, int, int], None]  # (chunk, runs done, runs failed)
_SINK = pytest.StashKey[Sink | None]()


def register_progress(config: pytest.Config) -> None:
    """On the process that owns the session: print progress lines unless turned off."""
    interval = float(setting(config, "crystallize_progress_interval") or 0.0)
    if interval > 0:
        config.pluginmanager.register(ProgressLines(config, interval), PLUGIN_NAME)


def note_run(item: pytest.Item, done: int, failed: int) -> None:
    """A chunk ran one more replicate: ``done`` runs so far, ``failed`` of them failed."""
    stash = item.config.stash
    if _SINK not in stash:
        stash[_SINK] = _sink(item.config)
    sink = stash[_SINK]
    if sink is not None:
        sink(item, done, failed)


def _sink(config: pytest.Config) -> Sink | None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        interval = float(workerinput.get(INTERVAL_KEY, 0.0))
        return _Sender(interval).send if interval > 0 else None
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin.ran if isinstance(plugin, ProgressLines) and plugin.active else None


class _Sender:
    """An xdist worker's side: the running chunk's counts, sent at most every half interval
    (the controller prints at most every interval)."""

    def __init__(self, interval: float) -> None:
        self.every = interval / 2
        self.last = -math.inf

    def send(self, item: pytest.Item, done: int, failed: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        report = pytest.TestReport(item.nodeid, item.location, {}, "passed", None, "setup")
        setattr(report, PROGRESS_ATTR, [done, failed])
        item.ihook.pytest_runtest_logreport(report=report)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ProgressLines:
    """The process that owns the session: counts each experiment's runs and prints its line."""

    def __init__(self, config: pytest.Config, interval: float) -> None:
        self.config = config
        self.interval = interval
        self._active: bool | None = None
        self.counts: dict[str, dict[str, tuple[int, int]]] = {}  # experiment -> chunk -> n
        self.times: dict[str, tuple[float, float]] = {}  # experiment -> (started, last shown)

    @property
    def active(self) -> bool:
        """Printing: there is a terminal reporter, and it does not write to a terminal."""
        if self._active is None:
            terminal = self.config.pluginmanager.get_plugin("terminalreporter")
            self._active = terminal is not None and not bool(terminal.isatty)
        return self._active

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[INTERVAL_KEY] = self.interval if self.active else 0.0

    @pytest.hookimpl
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        if self.active and nodeid.rpartition("::")[2].startswith("chunk-"):
            now = time.monotonic()
            self.times.setdefault(nodeid.rsplit("::", 2)[0], (now, now))

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        counts = getattr(report, PROGRESS_ATTR, None)
        runs = getattr(report, RUNS_ATTR, None) if report.when == "call" else None
        if counts is not None:
            self.update(report.nodeid, int(counts[0]), int(counts[1]))
        elif runs is not None:
            failed = sum(run.get("error") is not None for run in runs)
            self.update(report.nodeid, len(runs), failed)

    def ran(self, item: pytest.Item, done: int, failed: int) -> None:
        self.update(item.nodeid, done, failed)

    def update(self, nodeid: str, done: int, failed: int) -> None:
        if not self.active:
            return
        key = nodeid.rsplit("::", 2)[0]
        chunks = self.counts.setdefault(key, {})
        chunks[nodeid] = (done, failed)
        now = time.monotonic()
        started, shown = self.times.setdefault(key, (now, now))
        if now - shown < self.interval:
            return
        plan = self._plan(key)
        ran = sum(n for n, _ in chunks.values())
        if plan is None or not 0 < ran < plan[0]:
            return
        total, design = plan
        self.times[key] = (started, now)
        left = (now - started) / ran * (total - ran)
        failures = sum(f for _, f in chunks.values())
        up_to = "up to " if design else ""
        self._write(
            f"crystallize: {key}: {ran}/{total} runs{design}, {failures} failed, "
            f"{up_to}about {_duration(left)} left"
        )

    def _plan(self, key: str) -> tuple[int, str] | None:
        """The runs of the experiment's selected chunks, as the verdict board knows them, and
        for a sequential design the look it runs (the first not judged yet: under xdist,
        chunks of later looks may run too) and that it may stop before its last; None before
        the board knows it, and once a sequential design is decided (nothing more to say)."""
        board = self.config.pluginmanager.get_plugin("crystallize-verdicts")
        tracked: Tracked | None = getattr(board, "tracked", {}).get(key)
        if tracked is None:
            return None
        total = sum(len(tracked.all_chunks[n][1]) for n in tracked.selected)
        design = tracked.experiment.sequential
        if design is None or getattr(board, "plan_effect", None) is not None:
            return total, ""  # a pilot (--crystallize-plan) runs every look
        if tracked.judged:  # decided (or given errors): the rest is skipped or ignored
            return None
        look = tracked.looks_judged + 1
        return total, f" (look {look} of {design.looks}; stops at the first look that decides)"

    def _write(self, text: str) -> None:
        terminal: Any = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
            terminal.ensure_newline()  # after the file's progress dots (one process)
            if terminal._tw.width_of_current_line:  # xdist writes its dots without a file
                terminal.write("\n")
            terminal.write_line(text)
