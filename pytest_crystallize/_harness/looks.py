"""Sequential designs in the session: chunks belong to looks, the owner decides each look.

An experiment with a sequential design (the builder's ``.sequential(looks=K)``, or
``--crystallize-sequential=K`` for every experiment) runs its replicates in K looks: look k
adds the replicates ``[schedule[k-2], schedule[k-1])`` of every condition, in chunks of its
own (:func:`~.layout.chunk_layout`), and the selection runs every condition's look-1 chunks
first, then look 2's, and so on.

The process that owns the session judges look k (``judge_look``) as soon as every selected
chunk of the looks up to k is in (:func:`next_look`). When it stops the experiment (or k is
the last look), its verdicts are reported and, before the last look, the decision is written
to a file in a folder of this session (:func:`decision_folder`); a chunk of a later look
reads it when it is set up and skips with ``decided at look k of K``. A chunk that had
started already finishes; its runs are ignored: the verdicts use the looks up to the
decision only, so they are the same in one process, with any number of xdist workers and
with any distribution, and only the work wasted varies.

The look that decided it and why (``Tracked.stop_reason``) go to the JSON report
(:func:`sequential_document`) and to a line below the terminal summary's table
(:func:`decision_line`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from .._engine.atomic import write_atomic
from .._engine.experiment import Experiment
from .._engine.verdict import Verdict
from .._report.sequential import design_plans, judge_look
from .tracking import Tracked

_DECIDED = "decided at look "
_FOLDERS = pytest.StashKey[set[Path]]()
_PREPARING = pytest.StashKey[ThreadPoolExecutor]()
_PREPARED = pytest.StashKey[dict[str, Future[object]]]()
_WARMING = pytest.StashKey[dict[str, Future[object]]]()
_LOOK_PREFIX = re.compile(r"^look \d+ of \d+: ")


def decision_skip(look: int, looks: int) -> str:
    """The reason a chunk of a look after the decision skips with."""
    return f"{_DECIDED}{look} of {looks}"


def is_decision_skip(reason: str) -> bool:
    """Whether a chunk skipped because its experiment was decided at an earlier look."""
    return reason.removeprefix("Skipped: ").startswith(_DECIDED)


def decision_folder(config: pytest.Config, session: str) -> Path:
    """This session's folder of decisions (``session``: the id every process of the session
    shares): in the pytest cache, or the temporary folder under ``-p no:cacheprovider``."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("crystallize-looks")) / session
    return Path(tempfile.gettempdir()) / "crystallize-looks" / session


def _decision_file(config: pytest.Config, session: str, experiment: str) -> Path:
    name = hashlib.sha256(experiment.encode()).hexdigest()[:24]
    return decision_folder(config, session) / f"{name}.json"


def decided_look(config: pytest.Config, session: str, experiment: str) -> int | None:
    """The look that decided ``experiment`` (its node id), if the owner has said so."""
    try:
        data = json.loads(_decision_file(config, session, experiment).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return int(data["look"])


def write_decision(
    config: pytest.Config, session: str, experiment: str, look: int, looks: int, reason: str
) -> None:
    """Owner: say that ``experiment`` was decided at ``look``; the folder goes at the end."""
    path = _decision_file(config, session, experiment)
    path.parent.mkdir(parents=True, exist_ok=True)
    folders = config.stash.setdefault(_FOLDERS, set())
    if path.parent not in folders:
        folders.add(path.parent)
        config.add_cleanup(lambda: shutil.rmtree(path.parent, ignore_errors=True))
    text = json.dumps({"experiment": experiment, "look": look, "looks": looks, "reason": reason})
    write_atomic(path, text)


def _background(config: pytest.Config) -> ThreadPoolExecutor:
    """The session's one background thread (shut down, waited for, at its end)."""
    pool = config.stash.get(_PREPARING, None)
    if pool is None:
        pool = config.stash[_PREPARING] = ThreadPoolExecutor(1, "crystallize-looks")
        config.add_cleanup(lambda: pool.shutdown(wait=True, cancel_futures=True))
    return pool


_T_TESTS = frozenset({"welch_t_test", "paired_t_test"})  # they need scipy.special alone


def judge_module(experiment: Experiment) -> str | None:
    """What judging ``experiment`` imports: scipy.special for the built-in t-tests alone,
    else scipy.stats; None without hypotheses."""
    names = {h.verifier_name for h in experiment.hypotheses}
    if not names:
        return None
    return "scipy.special" if names <= _T_TESTS else "scipy.stats"


def warm_scipy(config: pytest.Config, experiment: Experiment) -> None:
    """Import what judging ``experiment`` needs (:func:`judge_module`) in a background
    thread, once per session, in a process that judges and runs no replicate meanwhile:
    xdist's controller (while its workers run), a merge, a session whose chunks run on a Dask
    cluster or a process pool. scipy.stats takes most of a second: imported when the first
    verdict is due, it is a serial tail after the last run. A failure here is left for the
    judge to report."""
    module = judge_module(experiment)
    warming = config.stash.setdefault(_WARMING, {})
    if module is not None and module not in warming:
        warming[module] = _background(config).submit(importlib.import_module, module)


def settle_imports(config: pytest.Config) -> None:
    """Wait for the background imports before this process runs replicates itself: their
    code may import the same modules, or read ``sys.modules`` (the global reseeding does),
    and must not see a module half imported."""
    wait(config.stash.get(_WARMING, {}).values())


def prepare_judge(config: pytest.Config, experiment: Experiment, key: str = "") -> None:
    """xdist's controller, or a merge: import what judging ``experiment`` needs, and compute
    the look plans of a sequential design (``key``: its node id), in a background thread.

    The controller hands out the chunks and judges the looks in one thread: computing the
    bounds at the first look would leave the workers without chunks meanwhile. The plans
    are cached (``efficacy_bounds``), so the judge finds them ready (:func:`judge_at` waits
    for them rather than compute them a second time); a failure here is left for the judge
    to report.
    """
    controller = config.pluginmanager.get_plugin("dsession") is not None
    if not controller and not config.getoption("crystallize_merge", None):
        return
    warm_scipy(config, experiment)
    if controller and experiment.sequential is not None:
        prepared = config.stash.setdefault(_PREPARED, {})
        prepared[key] = _background(config).submit(design_plans, experiment)


def next_look(tracked: Tracked) -> int | None:
    """The look of a sequential experiment to judge now: the one after the last judged, once
    every selected chunk of it and of the looks before it is in; else None."""
    design = tracked.experiment.sequential
    look = tracked.looks_judged + 1
    if design is None or look > design.looks:
        return None
    needed = {n for n in tracked.selected if tracked.look_of(n) <= look}
    return look if needed <= set(tracked.done) else None


def judge_at(
    config: pytest.Config,
    session: str,
    tracked: Tracked,
    treatments: Sequence[str],
    correction: str,
    look: int,
) -> list[Verdict] | None:
    """The verdicts of ``tracked`` at ``look`` when that look decides it, else None (the
    next look will be judged). A decision before the last look is written for the chunks."""
    design = tracked.experiment.sequential
    assert design is not None  # only sequential experiments have looks to judge
    lower = config.getoption("crystallize_lower_is_better") or ()
    prepared = config.stash.get(_PREPARED, {}).pop(tracked.key, None)
    if prepared is not None:
        wait([prepared])  # its plans, computed while the workers ran
    decision = judge_look(
        tracked.name, tracked.experiment, tracked.runs, treatments, correction, look, lower
    )
    tracked.looks_judged = look
    if not decision.stop and look < design.looks:
        return None
    tracked.stopped_at = look
    tracked.stop_reason = decision.reason
    if look < design.looks:
        write_decision(config, session, tracked.key, look, design.looks, decision.reason)
    return list(decision.verdicts)


def sequential_document(tracked: Tracked) -> dict[str, object] | None:
    """The ``sequential`` field of an experiment in the JSON report (None without a design)."""
    design = tracked.experiment.sequential
    if design is None:
        return None
    schedule = list(design.schedule(tracked.experiment.replicates))
    look = tracked.stopped_at
    return {
        "looks": design.looks,
        "schedule": schedule,
        "stopped_at_look": look,
        "replicates_used": schedule[look - 1] if look is not None else None,
        "reason": tracked.stop_reason if look is not None else None,
    }


def decision_line(tracked: Tracked, pilot: bool = False) -> str | None:
    """The terminal summary's line on a sequential experiment judged in the session: the
    look that decided it and why, or the look that could not be judged; None without a
    design, before it was judged, and in a pilot (``pilot``: ``--crystallize-plan`` judges
    it whole)."""
    design = tracked.experiment.sequential
    if design is None or pilot or not tracked.judged:
        return None
    schedule = design.schedule(tracked.experiment.replicates)
    look, looks = tracked.stopped_at, design.looks
    if look is None:
        return (
            f"sequential: {tracked.name} was not decided: look {tracked.looks_judged + 1} of "
            f"{looks} could not be judged (its verdicts say why)"
        )
    how = "stopped at" if look < looks else "ran to"
    why = _LOOK_PREFIX.sub("", tracked.stop_reason or "", count=1)
    line = (
        f"sequential: {tracked.name} {how} look {look} of {looks} ({schedule[look - 1]} of "
        f"{schedule[-1]} replicates per condition): {why}"
    )
    if any(v.look is not None and v.pvalue is not None for _, _, v in tracked.reported):
        line += "; its p-values and CIs are adjusted for the design (stage-wise ordering)"
    return line
