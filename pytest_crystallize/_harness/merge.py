"""The merge: ``--crystallize-merge`` judges the runs of the shards once, running none.

The session collects the experiment files as usual; its chunk items replay the shards' runs
(:mod:`.replay`) instead of running steps, so the verdicts, the exit code, JUnit XML, the
terminal table, the reports and the baselines come from the same machinery as in one
session, on the same runs in the same order: the same verdicts and p-values, to the last
digit.

Before anything runs, :class:`MergeBoard` refuses (a usage error naming the files) shard
reports that cannot be merged: a file that is not a shard report, a missing shard, a shard
given twice, shards cut into different N, run with different package versions or different
experiment definitions (their fingerprints, also against the experiments here), and a
replicate that two shards hold or that none does. A unit that stopped or crashed in its
shard is not refused: its chunk stops here with the shard's reason, and its verdicts are
errors, as in one session.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from .._engine.errors import CrystallizeError, CrystallizeUsageError
from .._engine.fingerprint import definition_fingerprint, fingerprint
from .board import VerdictBoard
from .files import load_experiments
from .replay import MERGE, MERGE_PATHS, ShardExperiment, ShardReport, read_shard, use_reports

_FLAG = "--crystallize-merge"
_ONE_RUN = "merge the JSON reports of every shard of one sharded run"


def merge_paths(config: pytest.Config) -> list[Path]:
    """The shard reports to merge, globs expanded (from the invocation directory, sorted);
    stored as absolute paths in the options, which xdist workers receive."""
    here = config.invocation_params.dir
    paths: list[Path] = []
    for given in config.getoption(MERGE, None) or []:
        if glob.has_magic(given):
            found = sorted(glob.glob(str(here / given)))
            if not found:
                msg = f"{_FLAG} {given!r} matches no file: {_ONE_RUN}"
                raise CrystallizeUsageError(msg)
            paths += [Path(p) for p in found]
        else:
            paths.append(here / given)
    seen: set[Path] = set()
    for path in paths:
        if path.resolve() in seen:
            msg = f"{_FLAG}: {str(path)!r} is given twice: give each shard's report once"
            raise CrystallizeUsageError(msg)
        seen.add(path.resolve())
    setattr(config.option, MERGE_PATHS, [str(p) for p in paths])
    return paths


def check_shards(reports: Sequence[ShardReport]) -> None:
    """Refuse shards of different N, a shard given twice or missing, different packages."""
    first = reports[0]
    for report in reports[1:]:
        if report.count != first.count:
            msg = (
                f"{_FLAG}: {first.label} and {report.label} were cut into different numbers "
                f"of shards: {_ONE_RUN}"
            )
            raise CrystallizeUsageError(msg)
    by_index: dict[int, ShardReport] = {}
    for report in reports:
        twin = by_index.setdefault(report.index, report)
        if twin is not report:
            msg = (
                f"{_FLAG}: {twin.path.name} and {report.path.name} are both shard "
                f"{report.index}/{report.count}: give each shard once"
            )
            raise CrystallizeUsageError(msg)
    missing = [k for k in range(1, first.count + 1) if k not in by_index]
    if missing:
        given = ", ".join(r.label for r in sorted(reports, key=lambda r: r.index))
        which = ", ".join(f"{k}/{first.count}" for k in missing)
        msg = (
            f"{_FLAG}: shard {which} {'is' if len(missing) == 1 else 'are'} missing (given: "
            f"{given}): give every shard's JSON report"
        )
        raise CrystallizeUsageError(msg)
    for report in reports[1:]:
        differ = sorted(
            name
            for name in set(first.packages) | set(report.packages)
            if first.packages.get(name) != report.packages.get(name)
        )
        if differ:
            shown = ", ".join(
                f"{n} {first.packages.get(n)} and {report.packages.get(n)}" for n in differ
            )
            msg = (
                f"{_FLAG}: {first.label} and {report.label} ran different package versions "
                f"({shown}): run every shard in one environment"
            )
            raise CrystallizeUsageError(msg)


def _prints(
    config: pytest.Config, entry: ShardExperiment, report: ShardReport
) -> tuple[str, str, int]:
    """The fingerprints and replicates of the experiment ``entry`` names, as defined here."""
    path = config.rootpath / entry.file
    where = f"{_FLAG}: {report.label} ran experiment {entry.name!r} of {entry.file}, which"
    fix = "merge in a checkout of the commit the shards ran, from the same rootdir"
    if not path.is_file():
        msg = f"{where} is not here (no file {entry.file} under {config.rootpath}): {fix}"
        raise CrystallizeUsageError(msg)
    try:
        experiment = load_experiments(config, path).get(entry.name)
    except (CrystallizeError, ImportError, SyntaxError) as exc:
        msg = f"{where} cannot be loaded here ({type(exc).__name__}: {exc}): {fix}"
        raise CrystallizeUsageError(msg) from None
    if experiment is None:
        msg = f"{where} {entry.file} here does not define: {fix}"
        raise CrystallizeUsageError(msg)
    return fingerprint(experiment), definition_fingerprint(experiment), experiment.replicates


def _name(entry: ShardExperiment) -> str:
    return f"experiment {entry.name!r} ({entry.file})"


def check_experiments(config: pytest.Config, reports: Sequence[ShardReport]) -> None:
    """Refuse shards whose experiment definitions differ (between them, or from the files
    here), and replicates that two shards hold, or none."""
    keys = dict.fromkeys(k for r in reports for k in r.experiments)
    for key in keys:
        holders = [(r, r.experiments[key]) for r in reports if key in r.experiments]
        report, entry = holders[0]
        for other, theirs in holders[1:]:
            if (theirs.fingerprint, theirs.definition) != (entry.fingerprint, entry.definition):
                msg = (
                    f"{_FLAG}: {_name(entry)} differs between {report.label} and {other.label}"
                    f" (fingerprint {entry.fingerprint} and {theirs.fingerprint}): every shard "
                    f"must run the same experiment definitions (one commit, the same options)"
                )
                raise CrystallizeUsageError(msg)
        here, definition, replicates = _prints(config, entry, report)
        if (here, definition) != (entry.fingerprint, entry.definition):
            msg = (
                f"{_FLAG}: {_name(entry)} is not the one the shards ran (fingerprint "
                f"{here} here, {entry.fingerprint} in {report.label}): merge with the "
                f"experiment files, commit and options the shards ran"
            )
            raise CrystallizeUsageError(msg)
        _check_replicates(holders, replicates)


def _check_replicates(holders: Sequence[tuple[ShardReport, ShardExperiment]], total: int) -> None:
    """Each replicate of each condition run in exactly one shard, with its run when the unit
    says it ran."""
    owner: dict[tuple[str, int], ShardReport] = {}
    for report, entry in holders:
        for unit in entry.units:
            for replicate in range(unit.start, unit.stop):
                held = owner.setdefault((unit.condition, replicate), report)
                if held is not report:
                    msg = (
                        f"{_FLAG}: replicate {replicate} of condition {unit.condition!r} of "
                        f"{_name(entry)} is in both {held.label} and {report.label}: "
                        f"{_ONE_RUN}"
                    )
                    raise CrystallizeUsageError(msg)
        ran = {(str(r["condition"]), int(r["replicate"])) for r in entry.runs}
        for condition, replicate in ran:
            if owner.get((condition, replicate)) is not report:
                msg = (
                    f"{_FLAG}: {report.label} holds a run of replicate {replicate} of condition "
                    f"{condition!r} of {_name(entry)} outside its units: the file was altered; "
                    f"run that shard again"
                )
                raise CrystallizeUsageError(msg)
        for unit in entry.units:
            if unit.status not in ("ran", "failed"):
                continue
            for replicate in range(unit.start, unit.stop):
                if (unit.condition, replicate) not in ran:
                    msg = (
                        f"{_FLAG}: {report.label} says replicate {replicate} of condition "
                        f"{unit.condition!r} of {_name(entry)} ran, but holds no run of it: the "
                        f"file is incomplete; run that shard again"
                    )
                    raise CrystallizeUsageError(msg)
    entry = holders[0][1]
    for condition in dict.fromkeys(c for c, _ in owner):
        missing = [r for r in range(total) if (condition, r) not in owner]
        if missing:
            given = ", ".join(r.path.name for r, _ in holders)
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            msg = (
                f"{_FLAG}: replicate {missing[0]}{more} of condition {condition!r} of "
                f"{_name(entry)} is in none of the shards that ran it ({given}): {_ONE_RUN}"
            )
            raise CrystallizeUsageError(msg)


class MergeBoard(VerdictBoard):
    """The session owner of a merge: reads and checks the shards before anything runs, then
    judges their runs as a session judges its own."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        paths = merge_paths(config)
        self.reports = [read_shard(path) for path in paths]
        check_shards(self.reports)
        use_reports(config, self.reports)

    @pytest.hookimpl
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        super().pytest_sessionstart(session)
        try:
            check_experiments(self.config, self.reports)
        except CrystallizeUsageError as exc:
            raise pytest.UsageError(str(exc)) from None
        runs = sum(len(e.runs) for r in self.reports for e in r.experiments.values())
        files = ", ".join(r.path.name for r in sorted(self.reports, key=lambda r: r.index))
        self.notes.append(  # after a blank line: below the table, not a row of it
            f"\ncrystallize: judged the {runs} runs of {len(self.reports)} shards ({files}); "
            f"no replicate ran in this session"
        )

    def document(self) -> dict[str, Any]:
        data = super().document()
        ordered = sorted(self.reports, key=lambda r: r.index)
        data["merge"] = {"count": len(ordered), "files": [r.path.name for r in ordered]}
        return data
