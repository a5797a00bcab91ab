"""Verdicts: decided by the process that owns the session, reported like test results.

The controller (or the only process, without xdist) learns which chunk items were selected,
collects the ``RunResult``s each chunk report carries, and when the last chunk of an
experiment is in, evaluates its hypotheses and sends one report per (hypothesis, treatment)
through ``pytest_runtest_logreport``: terminal, ``-rA``, JUnit XML, ``--lf`` and the exit code
all treat it as a test. An experiment whose chunks did not all run gets error (or, when
chunks were deselected, skip) verdicts that say what is missing, never a verdict on partial
data. A sequential experiment is judged look by look, and may be decided early (``looks.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from .._engine.cache import CacheStats
from .._engine.context import BASELINE_CONDITION
from .._engine.errors import CrystallizeUsageError
from .._engine.runs import RunResult
from .._engine.verdict import Verdict
from .._report.judge import judge
from .._report.planning import planned
from .._store.baselines import baseline_path, parse_gate, saved_experiments
from .._store.compare import Comparing
from .collect import STOPPED_ATTR, VERDICTS_ATTR, artifact_session, prepare_artifact_dirs
from .documents import document, write_documents
from .files import load_experiments
from .layout import session_layout
from .looks import is_decision_skip, judge_at, next_look, prepare_judge
from .reports import send
from .terminal import RUNS_ATTR
from .tracking import Tracked, comparisons, incomplete, save_whole

_STOPPED = "did not run: the session stopped first (-x, --maxfail, an interrupt or a crash)"

# --- tracking chunks on the controller ------------------------------------------------------


class VerdictBoard:
    """The controller-side plugin: aggregates chunk results and reports verdicts."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tracked: dict[str, Tracked] = {}
        self.verdicts: list[Verdict] = []
        self.session: pytest.Session | None = None
        self._counts: dict[str, tuple[int, int]] = {}  # attribute -> (items, items + verdicts)
        self._planned: int | None = None  # the verdicts planned, once counted
        self._emitting = False
        self.others = 0  # reports of tests that are neither chunks nor verdicts
        self.cache = CacheStats()
        self.notes: list[str] = []  # said once, at the end of the terminal summary
        if getattr(config.option, "reruns", 0):  # pytest-rerunfailures
            self.notes.append(
                "crystallize: --reruns reruns chunks, never verdicts: each verdict is decided "
                "once, on the last attempt of every chunk"
            )
        self.correction: str = config.getoption("crystallize_correction") or config.getini(
            "crystallize_correction"
        )
        self.inconclusive: str = config.getoption("crystallize_inconclusive")
        self.plan_effect: tuple[float, bool] | None = config.getoption("crystallize_plan")
        self.compare_label: str | None = config.getoption("crystallize_compare")
        self._gates_checked = False
        specs = config.getoption("crystallize_compare_fail") or []
        self.gates = {gate[0]: gate[1:] for gate in map(parse_gate, specs)}
        if specs and not self.compare_label:
            msg = (
                "--crystallize-compare-fail gates a comparison: give the baseline to compare "
                "with, as --crystallize-compare NAME"
            )
            raise CrystallizeUsageError(msg)
        self.comparing: Comparing | None = None
        self.saved: Mapping[str, Any] = {}  # a baseline not saved yet holds no experiment
        if self.compare_label:
            self.comparing = Comparing(
                self.compare_label,
                self.gates,
                frozenset(config.getoption("crystallize_lower_is_better") or ()),
                config.getoption("crystallize_compare_missing") or "skip",
            )
            path = baseline_path(config.rootpath, self.compare_label)
            self.saved = saved_experiments(path) or {}

    # learning what was selected

    def learn(self, nodeids: Iterable[str]) -> None:
        self._planned = None
        for nodeid in nodeids:
            parts = nodeid.split("::")
            if len(parts) != 4 or not parts[3].startswith("chunk-"):
                continue
            key = "::".join(parts[:2])
            tracked = self.tracked.get(key) or self._track(key, parts[0], parts[1])
            if tracked is not None and nodeid in tracked.all_chunks:
                tracked.selected.add(nodeid)

    def _track(self, key: str, file: str, name: str) -> Tracked | None:
        path = self.config.rootpath / file
        experiment = load_experiments(self.config, path).get(name)
        if experiment is None:
            return None
        conditions = [c for c, _ in experiment.conditions()]
        layout = session_layout(self.config, experiment, len(conditions))
        names = {f"{key}::{c}::chunk-{k}": (c, k) for c in conditions for k in range(len(layout))}
        chunks = {n: (c, layout[k][1]) for n, (c, k) in names.items()}
        looks = {n: layout[k][0] for n, (c, k) in names.items()}
        self.tracked[key] = Tracked(
            path, name, experiment, chunks, stored=self.saved.get(key), key=key, looks=looks
        )
        prepare_artifact_dirs(experiment, self.config)  # writes nothing: see its docstring
        prepare_judge(self.config, experiment, key)
        return self.tracked[key]

    @pytest.hookimpl
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.session = session
        self.learn(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        self.learn(ids)

    @pytest.hookimpl
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    # following the chunks

    def _owner(self, nodeid: str) -> Tracked | None:
        tracked = self.tracked.get(nodeid.rsplit("::", 2)[0])
        if tracked is None or nodeid not in tracked.selected:
            return None
        return tracked

    @pytest.hookimpl
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        # pytest (or xdist) sets testscollected to the items that run, and pytest-sugar its
        # tests_count; verdicts count too, so progress ends at 100%, never above.
        if self._planned is None:  # counted again once what was selected changes
            self._planned = sum(len(t.planned(self.compare_label)) for t in self.tracked.values())
        verdicts = self._planned
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        self._count(self.session, "testscollected", verdicts)
        self._count(reporter, "tests_count", verdicts)

    def _count(self, owner: Any, attribute: str, verdicts: int) -> None:
        current = getattr(owner, attribute, None)
        if not isinstance(current, int):
            return
        items, counted = self._counts.get(attribute, (current, -1))
        if current != counted:  # set afresh by its owner: the items alone
            items = current
        self._counts[attribute] = (items, items + verdicts)
        setattr(owner, attribute, items + verdicts)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tracked = self._owner(report.nodeid)
        if tracked is None:
            self.others += not self._emitting and report.when == "setup"
            return
        wanted = getattr(report, VERDICTS_ATTR, None)
        if wanted is not None and tracked.wanted is None:
            tracked.wanted = {(str(h), str(t)): xfail for h, t, xfail in wanted}
            self._planned = None
        if report.nodeid in tracked.done:
            return
        if str(report.outcome) == "rerun":  # pytest-rerunfailures: this attempt does not count
            tracked.chunk_runs.pop(report.nodeid, None)
            tracked.stopped.pop(report.nodeid, None)
            tracked.retrying.add(report.nodeid)
            return
        if report.when == "teardown" and report.nodeid in tracked.retrying:
            tracked.retrying.discard(report.nodeid)  # the end of the attempt, not of the chunk
            return
        payload = getattr(report, RUNS_ATTR, None)
        if payload is not None:
            runs = [RunResult.from_json(r) for r in payload]
            tracked.chunk_runs[report.nodeid] = runs
            for run in runs:
                if run.cache is not None:
                    self.cache.add(CacheStats.from_tuple(run.cache))
        stopped = getattr(report, STOPPED_ATTR, None)
        if stopped is not None:
            replicate, kind, reason = stopped
            detail = str(report.longrepr) if kind != "skipped" and report.longrepr else ""
            tracked.stopped[report.nodeid] = (int(replicate), str(kind), str(reason), detail)
        if str(report.when) == "???":  # xdist: the worker died while running this chunk
            tracked.done[report.nodeid] = f"{report.nodeid} did not finish: {report.longrepr}"
            self._judge_if_complete(tracked)
        elif report.when == "setup" and report.skipped:  # a skip mark on the chunk
            longrepr = report.longrepr
            why = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            first = tracked.all_chunks[report.nodeid][1].start
            why = why.removeprefix("Skipped: ")
            if not is_decision_skip(why):  # decided at an earlier look: not a missing run
                tracked.stopped[report.nodeid] = (first, "skipped", why, "")
        elif report.when == "setup" and not report.passed:
            tracked.done[report.nodeid] = f"{report.nodeid} did not run: setup {report.outcome}"
        elif report.when == "teardown":
            tracked.done.setdefault(report.nodeid, None)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for note in self.notes:
            terminalreporter.write_line(note)

    @pytest.hookimpl
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        tracked = self._owner(nodeid)
        if tracked is not None:
            self._judge_if_complete(tracked)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        if session.config.option.collectonly:
            return (yield)
        try:
            result = yield
        except session.Interrupted:
            if any(t.done for t in self.tracked.values()):  # else: collection errors
                self.finish(_STOPPED)
            raise
        except BaseException:
            self.finish(_STOPPED)
            raise
        self.finish(_STOPPED)
        return result

    def finish(self, reason: str) -> None:
        self._check_gates()
        for tracked in self.tracked.values():
            if not tracked.judged:
                missing = sorted(set(tracked.selected) - set(tracked.done))
                shown = ", ".join(n.split("::", 2)[2] for n in missing[:6])
                more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
                self._emit_all(tracked, "error", f"chunks {shown}{more} {reason}; no verdict")

    def _check_gates(self) -> None:
        """A gate on a metric no comparison had (a typo) is an error, not silently ignored."""
        comparing = self.comparing
        compared = [t for t in self.tracked.values() if t.compares(self.compare_label)]
        if not self.gates or comparing is None or self._gates_checked:
            return
        if any(not t.judged for t in compared):
            return
        self._gates_checked = True
        known = {
            v.treatment
            for t in compared
            for _, _, v in t.reported
            if v.hypothesis == comparing.hypothesis and t.stored is not None
        }
        known |= {m for t in compared if t.stored is None for m in t.recorded()}  # not saved yet
        for metric in sorted(set(self.gates) - known):
            message = (
                f"--crystallize-compare-fail names metric {metric!r}, which no comparison with "
                f"baseline {comparing.label!r} had and no experiment without one recorded "
                f"(metrics: {', '.join(sorted(known)) or 'none'}); fix the name"
            )
            if compared:
                self._emit(
                    compared[0], comparing.verdict(compared[0].name, metric, "error", message)
                )

    def _judge_if_complete(self, tracked: Tracked) -> None:
        """Judge what is ready: the whole experiment once all its selected chunks are in, or
        a sequential one look by look (a pilot, ``--crystallize-plan``, judges it whole)."""
        sequential = tracked.experiment.sequential is not None and self.plan_effect is None
        while not tracked.judged:
            if sequential:
                look = next_look(tracked)
                if look is None:
                    return
                tracked.horizon = look
                self._judge(tracked, look)
                if not tracked.judged:
                    tracked.horizon = None
            elif set(tracked.selected) - set(tracked.done):
                return
            else:
                self._judge(tracked, None)

    def _judge(self, tracked: Tracked, look: int | None) -> None:
        """Judge the chunks in view (``look``: of a sequential design, else all of them);
        at a look that does not decide yet, report nothing."""
        # In the experiment's chunk order, not the order the chunks happened to finish in.
        problems = [p for n in tracked.chunks if (p := tracked.done.get(n)) is not None]
        if problems:
            shown = "; ".join(problems[:3])
            self._emit_all(tracked, "error", f"{shown}; no verdict is given on partial data")
            return
        if tracked.stopped or tracked.missing():
            self._emit_all(tracked, *incomplete(tracked))
            return
        treatments = tracked.treatments()
        unselected = [
            n.split("::", 2)[2]
            for n, (c, _) in tracked.chunks.items()
            if n not in tracked.selected and (c in treatments or c == BASELINE_CONDITION)
        ]
        if unselected:
            shown = ", ".join(unselected[:6]) + (" ..." if len(unselected) > 6 else "")
            self._emit_all(
                tracked,
                "skipped",
                f"not every replicate was selected ({shown} deselected); a verdict needs "
                f"all of them: select whole experiments or conditions",
            )
            return
        if look is None:
            verdicts = judge(
                tracked.name, tracked.experiment, tracked.runs, treatments, self.correction
            )
        else:
            session = artifact_session(self.config)
            decided = judge_at(self.config, session, tracked, treatments, self.correction, look)
            if decided is None:
                return
            verdicts = decided
        tracked.judged = True
        tracked.complete = all(run.error is None for run in tracked.runs)
        if self.plan_effect is not None:
            verdicts = planned(verdicts, tracked.experiment, tracked.runs, self.plan_effect)
        if self.comparing is not None:
            verdicts += comparisons(tracked, self.comparing)
        if tracked.wanted is not None:  # the family was judged whole; these were selected
            verdicts = [
                v
                for v in verdicts
                if (v.hypothesis, v.treatment) in tracked.wanted or v.hypothesis.startswith("vs-")
            ]
        for verdict in verdicts:
            self._emit(tracked, verdict)

    def _emit_all(self, tracked: Tracked, outcome: str, message: str) -> None:
        """Report every planned verdict of ``tracked`` with one outcome and message."""
        tracked.judged = True
        for hypothesis, treatment in tracked.planned(self.compare_label):
            shown = BASELINE_CONDITION if hypothesis == f"vs-{self.compare_label}" else ""
            verdict = Verdict(
                tracked.name, hypothesis, treatment, outcome, message, condition=shown
            )
            self._emit(tracked, verdict)

    def _emit(self, tracked: Tracked, verdict: Verdict) -> None:
        self._emitting = True
        self.verdicts.append(verdict)
        try:
            send(self.config, tracked, verdict, self.inconclusive)
        finally:
            self._emitting = False

    # session outputs

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.config.option.collectonly and any(t.done for t in self.tracked.values()):
            self.finish(_STOPPED)  # experiments cut short by an error the loop did not see
        self._nothing_judged(session)
        config = self.config
        save_label = config.getoption("crystallize_save")
        if save_label and not config.option.collectonly:  # listing is not saving
            left = save_whole(baseline_path(config.rootpath, save_label), self.tracked)
            if left:
                self.notes.append(
                    f"crystallize: baseline {save_label!r} leaves out {', '.join(left)}: not "
                    f"every replicate ran and succeeded, and a baseline holds whole runs only"
                )
        self.notes += write_documents(session, self.document)  # lines for what failed

    def _nothing_judged(self, session: pytest.Session) -> None:
        """Chunks ran, their experiments have verdicts, none was selected and no other test
        ran: the session judged nothing, which is "no tests ran" (exit 5), never a pass."""
        ran = [t for t in self.tracked.values() if t.done]
        judgeable = any(t.experiment.hypotheses and t.experiment.treatments for t in ran)
        if session.exitstatus == 0 and judgeable and not self.verdicts and not self.others:
            session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
            self.notes.append(
                "crystallize: nothing was judged: chunks ran, but no verdict was selected "
                "(select the experiment, a hypothesis, a treatment or a verdict)"
            )

    def document(self) -> dict[str, Any]:
        """The session as plain data: the JSON report, and what Markdown and HTML show."""
        settings = {
            "correction": self.correction,
            "inconclusive": self.inconclusive,
            "compare": self.compare_label,
            "compare_fail": sorted(self.config.getoption("crystallize_compare_fail") or []),
            "plan": self.plan_effect is not None,
        }
        return document(self.config.rootpath, self.tracked.values(), self.cache, settings)
