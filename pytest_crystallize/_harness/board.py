"""Verdicts: decided by the process that owns the session, reported like test results.

The controller (or the only process, without xdist) learns which chunk items were selected,
collects the ``RunResult``s each chunk report carries, and when the last chunk of an
experiment is in, evaluates its hypotheses and sends one report per (hypothesis, treatment)
through ``pytest_runtest_logreport``: terminal, ``-rA``, JUnit XML, ``--lf`` and the exit code
all treat it as a test. An experiment whose chunks did not all run gets error (or, when
chunks were deselected, skip) verdicts that say what is missing, never a verdict on partial
data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from .._engine.atomic import write_atomic
from .._engine.cache import CacheStats
from .._engine.context import BASELINE_CONDITION
from .._engine.errors import CrystallizeUsageError
from .._engine.fingerprint import fingerprint
from .._engine.runs import RunResult
from .._engine.verdict import Verdict
from .._report.documents import (
    experiment_document,
    markdown,
    session_document,
    write_json,
    write_markdown,
)
from .._report.judge import judge, planned
from .._store.baselines import baseline_path, compare, load, parse_gate
from .collect import (
    STOPPED_ATTR,
    chunk_ranges,
    prepare_artifact_dirs,
    worker_count,
)
from .files import load_experiments
from .terminal import RUNS_ATTR, VERDICT_ATTR
from .tracking import Tracked, incomplete, save_whole

_STOPPED = "did not run: the session stopped first (-x, --maxfail, an interrupt or a crash)"

# --- tracking chunks on the controller ------------------------------------------------------


class VerdictBoard:
    """The controller-side plugin: aggregates chunk results and reports verdicts."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tracked: dict[str, Tracked] = {}
        self.verdicts: list[Verdict] = []
        self.session: pytest.Session | None = None
        self._counted = -1
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
        self.saved: Mapping[str, Any] = (
            load(baseline_path(config.rootpath, self.compare_label))["experiments"]
            if self.compare_label
            else {}
        )

    # learning what was selected

    def learn(self, nodeids: Iterable[str]) -> None:
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
        ranges = chunk_ranges(experiment.replicates, len(conditions), worker_count(self.config))
        chunks = {
            f"{key}::{condition}::chunk-{k}": (condition, replicates)
            for condition in conditions
            for k, replicates in enumerate(ranges)
        }
        self.tracked[key] = Tracked(path, name, experiment, chunks, stored=self.saved.get(key))
        prepare_artifact_dirs(experiment)
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
        # pytest (or xdist) sets testscollected to the items collected; verdicts count too,
        # so progress percentages end at 100%.
        session = self.session
        if session is not None and session.testscollected != self._counted:
            verdicts = sum(len(t.planned(self.compare_label)) for t in self.tracked.values())
            self._counted = session.testscollected = session.testscollected + verdicts

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tracked = self._owner(report.nodeid)
        if tracked is None or report.nodeid in tracked.done:
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
        if (
            not self.gates
            or self._gates_checked
            or any(t.stored is not None and not t.judged for t in self.tracked.values())
        ):
            return
        self._gates_checked = True
        compared = {
            v.treatment
            for t in self.tracked.values()
            for _, _, v in t.reported
            if v.hypothesis == f"vs-{self.compare_label}"
        }
        owner = next((t for t in self.tracked.values() if t.stored is not None), None)
        for metric in sorted(set(self.gates) - compared):
            known = ", ".join(sorted(compared)) or "none"
            message = (
                f"--crystallize-compare-fail names metric {metric!r}, which no comparison with "
                f"baseline {self.compare_label!r} had (compared metrics: {known}); fix the name"
            )
            if owner is not None:
                self._emit(
                    owner, Verdict(owner.name, f"vs-{self.compare_label}", metric, "error", message)
                )

    def _judge_if_complete(self, tracked: Tracked) -> None:
        if tracked.judged or set(tracked.selected) - set(tracked.done):
            return
        # In the experiment's chunk order, not the order the chunks happened to finish in.
        problems = [p for n in tracked.all_chunks if (p := tracked.done.get(n)) is not None]
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
            for n, (c, _) in tracked.all_chunks.items()
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
        tracked.judged = True
        tracked.complete = all(run.error is None for run in tracked.runs)
        verdicts = judge(
            tracked.name, tracked.experiment, tracked.runs, treatments, self.correction
        )
        if self.plan_effect is not None:
            verdicts = planned(verdicts, tracked.experiment, tracked.runs, self.plan_effect)
        if self.compare_label and tracked.stored is not None:
            if tracked.complete:
                verdicts += compare(
                    tracked.name,
                    tracked.experiment,
                    tracked.runs,
                    tracked.stored,
                    self.compare_label,
                    self.gates,
                )
            else:
                verdicts += [
                    Verdict(tracked.name, h, t, "error", "runs failed; nothing to compare")
                    for h, t in tracked.planned(self.compare_label)
                    if h.startswith("vs-")
                ]
        for verdict in verdicts:
            self._emit(tracked, verdict)

    def _emit_all(self, tracked: Tracked, outcome: str, message: str) -> None:
        """Report every planned verdict of ``tracked`` with one outcome and message."""
        tracked.judged = True
        for hypothesis, treatment in tracked.planned(self.compare_label):
            self._emit(tracked, Verdict(tracked.name, hypothesis, treatment, outcome, message))

    def _emit(self, tracked: Tracked, verdict: Verdict) -> None:
        self.verdicts.append(verdict)
        file = tracked.path.relative_to(self.config.rootpath).as_posix()
        nodeid = f"{file}::{verdict.name}"
        location = (file, None, verdict.name)
        keywords: dict[str, Any] = dict.fromkeys(
            (tracked.name, verdict.hypothesis, verdict.treatment, "crystallize"), 1
        )
        hook = self.config.hook
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)

        def report(when: Any, outcome: Any, longrepr: Any, **extra: Any) -> None:
            rep = pytest.TestReport(nodeid, location, keywords, outcome, longrepr, when, **extra)
            setattr(rep, VERDICT_ATTR, verdict.to_json())
            hook.pytest_runtest_logreport(report=rep)

        outcome = verdict.outcome
        if outcome == "inconclusive":  # --crystallize-inconclusive decides what it counts as
            outcome = {"fail": "failed", "skip": "skipped", "pass": "passed"}[self.inconclusive]
        tracked.reported.append((nodeid, outcome, verdict))
        if outcome == "error":
            report("setup", "failed", verdict.message)
        elif outcome == "skipped":
            report("setup", "skipped", (file, None, f"{verdict.name}: {verdict.message}"))
        else:
            report("setup", "passed", None)
            report("call", outcome, verdict.message)
        report("teardown", "passed", None, user_properties=verdict.properties())
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    # session outputs

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.config.option.collectonly and any(t.done for t in self.tracked.values()):
            self.finish(_STOPPED)  # experiments cut short by an error the loop did not see
        config = self.config
        save_label = config.getoption("crystallize_save")
        if save_label:
            left = save_whole(baseline_path(config.rootpath, save_label), self.tracked)
            if left:
                self.notes.append(
                    f"crystallize: baseline {save_label!r} leaves out {', '.join(left)}: not "
                    f"every replicate ran and succeeded, and a baseline holds whole runs only"
                )
        targets = {
            "json": config.getoption("crystallize_json"),
            "md": config.getoption("crystallize_md"),
            "html": config.getoption("crystallize_html"),
        }
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if config.getoption("crystallize_no_step_summary"):
            summary = None
        if not any(targets.values()) and not summary:
            return
        document = self.document()
        if targets["json"]:
            write_json(Path(targets["json"]), document)
        text = markdown(document)
        if targets["md"]:
            write_markdown(Path(targets["md"]), text)
        if summary:
            write_markdown(Path(summary), text, append=True)
        if targets["html"]:
            from .._report.html import render  # lazy: only --crystallize-html needs it

            write_atomic(Path(targets["html"]), render(document))

    def document(self) -> dict[str, Any]:
        """The session as plain data: the JSON report, and what Markdown and HTML show."""
        experiments = [
            experiment_document(
                name=t.name,
                file=t.path.relative_to(self.config.rootpath).as_posix(),
                replicates=t.experiment.replicates,
                conditions=t.conditions_selected(),
                runs=t.runs,
                verdicts=t.reported,
                fingerprint=fingerprint(t.experiment),
            )
            for t in self.tracked.values()
            if t.selected
        ]
        settings = {
            "correction": self.correction,
            "inconclusive": self.inconclusive,
            "compare": self.compare_label,
            "compare_fail": sorted(self.config.getoption("crystallize_compare_fail") or []),
            "plan": self.plan_effect is not None,
        }
        return session_document(
            root=self.config.rootpath, experiments=experiments, cache=self.cache, settings=settings
        )
