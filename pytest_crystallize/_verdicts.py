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

import inspect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ._cache import CacheStats
from ._collect import RUNS_ATTR, chunk_ranges, load_experiments, worker_count
from ._context import BASELINE_CONDITION
from ._errors import HypothesisError, MissingMetricError
from ._experiment import Experiment
from ._hypotheses import Hypothesis, VerifierCallable, check_metrics, evaluate
from ._results import ConditionMetrics, RunResult, Verdict, build_metrics, plain

VERDICT_ATTR = "crystallize_verdict"
_STOPPED = "did not run: the session stopped first (-x, --maxfail, an interrupt or a crash)"

# --- deciding -----------------------------------------------------------------------------


def _alpha(hyp: Hypothesis, output: Mapping[str, Any]) -> float | None:
    for key in ("alpha", "significance_level"):
        if isinstance(output.get(key), int | float):
            return float(output[key])
    verifier = hyp.verifier
    if isinstance(verifier, VerifierCallable):
        if "alpha" in verifier.params:
            return float(verifier.params["alpha"])
        param = inspect.signature(verifier.factory.fn).parameters.get("alpha")
        if param is not None and isinstance(param.default, int | float):
            return float(param.default)
    return None


def _pvalue(output: Mapping[str, Any]) -> float | None:
    for key in ("p_value", "pvalue", "p"):
        value = output.get(key)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def _decide(output: Mapping[str, Any]) -> tuple[bool, str]:
    """Pass when the output says ``passed`` (if present), else ``significant``."""
    pvalue = _pvalue(output)
    if pvalue is not None and math.isnan(pvalue):
        return False, "the p-value is NaN, so nothing can be concluded"
    for key in ("passed", "significant"):
        if key in output:
            return bool(output[key]), f"{key}={bool(output[key])}"
    keys = ", ".join(repr(k) for k in output) or "none"
    return False, (
        f"the verifier's result has neither 'passed' nor 'significant' (its keys: {keys}); "
        "return one of them so the verdict can be decided"
    )


def _mean(values: Sequence[Any]) -> float | None:
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return sum(numbers) / len(numbers) if numbers else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _verdict(
    experiment: str,
    hyp: Hypothesis,
    treatment: str,
    output: Any,
    metrics: Mapping[str, ConditionMetrics],
    used: Sequence[int],
    warned: Sequence[str],
) -> Verdict:
    outputs = output if isinstance(output, list) else [output]
    mappings = [o if isinstance(o, Mapping) else o.as_dict() for o in outputs]
    base, treated = metrics[BASELINE_CONDITION], metrics[treatment]
    names = [m for g in hyp.metric_groups(list(base.metrics)) for m in g]
    first = names[0] if names else ""
    b = [base.metrics[first][i] for i in used] if first in base.metrics else []
    t = [treated.metrics[first][i] for i in used] if first in treated.metrics else []
    notes = list(warned)
    if len(b) > 1 and len(set(map(repr, b))) == 1 and len(set(map(repr, t))) == 1:
        notes.append(
            f"degenerate input: zero variance in both conditions (every replicate of "
            f"{first!r} gave {b[0]!r} in baseline and {t[0]!r} in {treatment!r})"
        )
    decisions = [_decide(m) for m in mappings]
    passed = all(ok for ok, _ in decisions)
    pvalue = _pvalue(mappings[0])
    alpha = _alpha(hyp, mappings[0])
    stats = (
        f"p={_fmt(pvalue)}, alpha={_fmt(alpha)}, n={len(b)} vs {len(t)}, "
        f"means {_fmt(_mean(b))} vs {_fmt(_mean(t))}"
    )
    if passed:
        message = f"{hyp.verifier_name}: {stats}"
    else:
        reasons = "; ".join(reason for ok, reason in decisions if not ok)
        message = (
            f"hypothesis {hyp.name!r}, treatment {treatment!r} vs baseline on {first!r}: "
            f"verifier {hyp.verifier_name} did not pass ({reasons})\n  {stats}\n"
            f"  the verifier returned: {plain(output)!r}"
        )
    if notes:
        message += "".join(f"\n  note: {n}" for n in notes)
    return Verdict(
        experiment=experiment,
        hypothesis=hyp.name,
        treatment=treatment,
        outcome="passed" if passed else "failed",
        message=message,
        verifier=hyp.verifier_name,
        metrics=tuple(names),
        pvalue=None if pvalue is None or math.isnan(pvalue) else pvalue,
        alpha=alpha,
        n_baseline=len(b),
        n_treatment=len(t),
        mean_baseline=_mean(b),
        mean_treatment=_mean(t),
        output=plain(output),
        notes=tuple(notes),
    )


def judge(
    name: str, experiment: Experiment, runs: Sequence[RunResult], treatments: Sequence[str]
) -> list[Verdict]:
    """Verdicts for every (hypothesis, treatment) from complete, error-free runs."""

    def all_errors(message: str) -> list[Verdict]:
        return [
            Verdict(name, h.name, t, "error", message, verifier=h.verifier_name)
            for h in experiment.hypotheses
            for t in treatments
        ]

    failed = [r for r in runs if r.error is not None]
    if failed:
        counts: dict[str, int] = {}
        for run in failed:
            counts[run.condition] = counts.get(run.condition, 0) + 1
        shown = ", ".join(
            f"{n} of {experiment.replicates} replicates of condition {c!r}"
            for c, n in counts.items()
        )
        first = failed[0].error
        assert first is not None
        return all_errors(
            f"{shown} failed, so no verdict is given on partial data; first failure: "
            f"{first.summary()} (see the failed chunk for the traceback)"
        )
    conditions = [BASELINE_CONDITION, *treatments]
    metrics = build_metrics(runs, conditions, experiment.replicates)
    try:
        check_metrics(experiment.hypotheses, metrics, name)
        evaluated = evaluate(experiment.hypotheses, metrics, BASELINE_CONDITION, treatments)
    except (MissingMetricError, HypothesisError) as exc:
        return all_errors(str(exc))
    verdicts = []
    for hyp, result in zip(experiment.hypotheses, evaluated, strict=True):
        for treatment in treatments:
            if treatment not in result.results:
                verdicts.append(
                    Verdict(
                        name,
                        hyp.name,
                        treatment,
                        "error",
                        f"no replicate has the metrics {hyp.metrics_spec!r} in both baseline "
                        f"and {treatment!r}, so there is nothing to compare",
                        verifier=hyp.verifier_name,
                    )
                )
                continue
            verdicts.append(
                _verdict(
                    name,
                    hyp,
                    treatment,
                    result.results[treatment],
                    metrics,
                    result.replicates[treatment],
                    result.warnings.get(treatment, ()),
                )
            )
    return verdicts


# --- tracking chunks on the controller ------------------------------------------------------


@dataclass
class _Tracked:
    """One experiment seen by the controller: its chunks and what has come back."""

    path: Path
    name: str
    experiment: Experiment
    all_chunks: dict[str, str]  # chunk node id -> condition
    selected: set[str] = field(default_factory=set)
    done: dict[str, str | None] = field(default_factory=dict)  # node id -> problem or None
    runs: list[RunResult] = field(default_factory=list)
    judged: bool = False

    def conditions_selected(self) -> list[str]:
        return [c for c in dict.fromkeys(self.all_chunks.values()) if self._has(c)]

    def _has(self, condition: str) -> bool:
        return any(self.all_chunks[n] == condition for n in self.selected)

    def treatments(self) -> list[str]:
        if not self._has(BASELINE_CONDITION):
            return []
        return [c for c in self.conditions_selected() if c != BASELINE_CONDITION]

    def verdict_count(self) -> int:
        return len(self.experiment.hypotheses) * len(self.treatments())


class VerdictBoard:
    """The controller-side plugin: aggregates chunk results and reports verdicts."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tracked: dict[str, _Tracked] = {}
        self.verdicts: list[Verdict] = []
        self.session: pytest.Session | None = None
        self._counted = -1
        self.cache = CacheStats()

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

    def _track(self, key: str, file: str, name: str) -> _Tracked | None:
        path = self.config.rootpath / file
        experiment = load_experiments(self.config, path).get(name)
        if experiment is None:
            return None
        conditions = [c for c, _ in experiment.conditions()]
        ranges = chunk_ranges(experiment.replicates, len(conditions), worker_count(self.config))
        chunks = {
            f"{key}::{condition}::chunk-{k}": condition
            for condition in conditions
            for k in range(len(ranges))
        }
        self.tracked[key] = _Tracked(path, name, experiment, chunks)
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

    def _owner(self, nodeid: str) -> _Tracked | None:
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
            verdicts = sum(t.verdict_count() for t in self.tracked.values())
            self._counted = session.testscollected = session.testscollected + verdicts

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tracked = self._owner(report.nodeid)
        if tracked is None or report.nodeid in tracked.done:
            return
        payload = getattr(report, RUNS_ATTR, None)
        if payload is not None:
            runs = [RunResult.from_json(r) for r in payload]
            tracked.runs.extend(runs)
            for run in runs:
                if run.cache is not None:
                    self.cache.add(CacheStats.from_tuple(run.cache))
        if str(report.when) == "???":  # xdist: the worker died while running this chunk
            tracked.done[report.nodeid] = f"{report.nodeid} did not finish: {report.longrepr}"
            self._judge_if_complete(tracked)
        elif report.when == "setup" and not report.passed:
            tracked.done[report.nodeid] = f"{report.nodeid} did not run: setup {report.outcome}"
        elif report.when == "teardown":
            tracked.done.setdefault(report.nodeid, None)

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
        for tracked in self.tracked.values():
            if not tracked.judged:
                missing = sorted(set(tracked.selected) - set(tracked.done))
                shown = ", ".join(n.split("::", 2)[2] for n in missing[:6])
                more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
                self._emit_all(tracked, "error", f"chunks {shown}{more} {reason}; no verdict")

    def _judge_if_complete(self, tracked: _Tracked) -> None:
        if tracked.judged or set(tracked.selected) - set(tracked.done):
            return
        problems = [p for p in tracked.done.values() if p is not None]
        if problems:
            shown = "; ".join(problems[:3])
            self._emit_all(tracked, "error", f"{shown}; no verdict is given on partial data")
            return
        treatments = tracked.treatments()
        unselected = [
            n.split("::", 2)[2]
            for n, c in tracked.all_chunks.items()
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
        for verdict in judge(tracked.name, tracked.experiment, tracked.runs, treatments):
            self._emit(tracked, verdict)

    def _emit_all(self, tracked: _Tracked, outcome: str, message: str) -> None:
        tracked.judged = True
        for hyp in tracked.experiment.hypotheses:
            for treatment in tracked.treatments():
                verdict = Verdict(
                    tracked.name, hyp.name, treatment, outcome, message, verifier=hyp.verifier_name
                )
                self._emit(tracked, verdict)

    def _emit(self, tracked: _Tracked, verdict: Verdict) -> None:
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

        if verdict.outcome == "error":
            report("setup", "failed", verdict.message)
        elif verdict.outcome == "skipped":
            report("setup", "skipped", (file, 0, f"Skipped: {verdict.message}"))
        else:
            report("setup", "passed", None)
            report("call", verdict.outcome, verdict.message)
        report("teardown", "passed", None, user_properties=verdict.properties())
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
