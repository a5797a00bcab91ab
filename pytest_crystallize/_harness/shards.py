"""Shards: ``--crystallize-shard=K/N`` runs one share of the replicates, judged by the merge.

The replicates of every selected condition are cut into units (:func:`~.layout.unit_ranges`,
from the experiment and N alone). The units are sorted by (file, experiment, condition, first
replicate) and dealt out in that order, each to the shard with the fewest replicates so far
(the lowest K on a tie): the same shares whatever the collection order and the number of
xdist workers, each unit in exactly one shard, and the shards' replicate counts differ by a
unit's size at most. Shard K keeps the chunks of its units; the others are deselected
(``pytest_deselected``).

A shard judges nothing (:class:`ShardBoard`): it follows its chunks as a session does and
writes, in its JSON report's ``shard`` field, every run, each unit and how it ended, K and N,
each experiment's fingerprints and the package versions; ``--crystallize-merge``
(:mod:`.merge`) checks the shards and judges them once.
"""

from __future__ import annotations

import bisect
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from .._engine.errors import CrystallizeUsageError
from .._engine.fingerprint import definition_fingerprint, fingerprint
from .._engine.runs import RunResult
from .._report.documents import environment
from .board import VerdictBoard
from .collect import ChunkItem, VerdictItem, experiment_of
from .layout import shard_option, unit_ranges
from .replay import MERGE, portable
from .tracking import Tracked

UnitKey = tuple[str, str, str, int]  # file, experiment, condition, first replicate


def check_modes(config: pytest.Config) -> None:
    """A shard writes its runs to a JSON report and judges nothing; a merge runs nothing."""
    shard = config.getoption("crystallize_shard", None)
    merge = config.getoption(MERGE, None)
    if shard and merge:
        msg = (
            "--crystallize-shard runs a share of the replicates and --crystallize-merge judges "
            "the shards' runs: give one of them, in separate sessions"
        )
        raise CrystallizeUsageError(msg)
    if not shard:
        return
    label = f"--crystallize-shard={shard[0]}/{shard[1]}"
    if not config.getoption("crystallize_json", None):
        msg = f"{label} writes its runs for the merge: give --crystallize-json=PATH"
        raise CrystallizeUsageError(msg)
    for name in ("crystallize_save", "crystallize_compare", "crystallize_plan"):
        if config.getoption(name, None):
            flag = "--" + name.replace("_", "-")
            msg = (
                f"{label} judges nothing, so {flag} belongs to the session that merges the "
                f"shards (--crystallize-merge): give it there"
            )
            raise CrystallizeUsageError(msg)


def assign(units: Iterable[tuple[UnitKey, int]], shards: int) -> dict[UnitKey, int]:
    """The shard (1 to ``shards``) of each unit (key, replicate count): in key order, each
    to the shard with the fewest replicates so far, the lowest on a tie."""
    loads = [0] * shards
    assigned: dict[UnitKey, int] = {}
    for key, size in sorted(units):
        shard = min(range(shards), key=lambda s: (loads[s], s))
        loads[shard] += size
        assigned[key] = shard + 1
    return assigned


def _units_of(
    items: Sequence[ChunkItem], shards: int
) -> dict[tuple[str, str], tuple[list[int], int]]:
    """The first replicate of every unit and the replicates, by (experiment node id,
    condition) of the chunks."""
    starts: dict[tuple[str, str], tuple[list[int], int]] = {}
    for chunk in items:
        node = experiment_of(chunk)
        key = (node.nodeid, chunk.condition.name)
        if key not in starts:
            units = unit_ranges(node.experiment, shards)
            starts[key] = ([r.start for _, r in units], node.experiment.replicates)
    return starts


class ShardFilter:
    """Keeps the chunks of shard K's units, after the selection (registered after it)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        yield
        shard = shard_option(config)
        if shard is None:
            return
        k, n = shard
        chunks = [i for i in items if isinstance(i, ChunkItem)]
        starts = _units_of(chunks, n)
        sizes: list[tuple[UnitKey, int]] = []
        for (nodeid, condition), (firsts, total) in starts.items():
            file, name = nodeid.split("::", 1)
            for first, end in zip(firsts, [*firsts[1:], total], strict=True):
                sizes.append(((file, name, condition, first), end - first))
        shares = assign(sizes, n)
        kept: list[pytest.Item] = []
        gone: list[pytest.Item] = []
        for item in items:
            if isinstance(item, VerdictItem):
                gone.append(item)  # judged by the merge
            elif isinstance(item, ChunkItem):
                node = experiment_of(item)
                firsts = starts[(node.nodeid, item.condition.name)][0]
                first = firsts[bisect.bisect_right(firsts, item.replicates.start) - 1]
                file, name = node.nodeid.split("::", 1)
                share = shares[(file, name, item.condition.name, first)]
                (kept if share == k else gone).append(item)
            else:
                kept.append(item)
        items[:] = kept
        if gone:
            config.hook.pytest_deselected(items=gone)


def _unit_ending(
    tracked: Tracked, chunks: Sequence[str], ran: set[tuple[str, int]]
) -> tuple[str, int | None, str | None]:
    """``(status, replicate, reason)`` of a unit from its chunks (see ``UNIT_STATUSES``)."""
    for nodeid in chunks:
        condition, replicates = tracked.all_chunks[nodeid]
        if nodeid in tracked.stopped:
            replicate, kind, why, _ = tracked.stopped[nodeid]  # the traceback stays behind
            return kind, replicate, why
        first = next((r for r in replicates if (condition, r) not in ran), replicates.start)
        problem = tracked.done.get(nodeid)
        if problem is not None:
            return "crashed", first, problem
        if nodeid not in tracked.done:
            return "not run", first, "the shard's session stopped first (-x, --maxfail, a crash)"
    return "ran", None, None


def shard_experiment(tracked: Tracked, root: Path, shards: int) -> dict[str, Any]:
    """One experiment's part of a shard report: its units, how each ended, and its runs."""
    firsts = [r.start for _, r in unit_ranges(tracked.experiment, shards)]
    looks = {r.start: look for look, r in unit_ranges(tracked.experiment, shards)}
    ends = [*firsts[1:], tracked.experiment.replicates]
    by_unit: dict[tuple[str, int], list[str]] = {}
    for nodeid, (condition, replicates) in tracked.all_chunks.items():
        if nodeid in tracked.selected:
            first = firsts[bisect.bisect_right(firsts, replicates.start) - 1]
            by_unit.setdefault((condition, first), []).append(nodeid)
    runs = [
        run
        for n in tracked.all_chunks
        if n in tracked.selected
        for run in tracked.chunk_runs.get(n, ())
    ]
    ran = {(r.condition, r.replicate) for r in runs}
    units = []
    for (condition, first), chunks in by_unit.items():
        status, replicate, reason = _unit_ending(tracked, chunks, ran)
        stop = ends[firsts.index(first)]
        failed = sum(
            1 for r in runs if r.condition == condition and first <= r.replicate < stop and r.error
        )
        if status == "ran" and failed:
            status = "failed"
        units.append(
            {
                "condition": condition,
                "replicates": [first, stop],
                "look": looks[first],
                "status": status,
                "failed_runs": failed,
                "replicate": replicate,
                "reason": reason,
            }
        )
    return {
        "file": tracked.path.relative_to(root).as_posix(),
        "name": tracked.name,
        "fingerprint": fingerprint(tracked.experiment),
        "definition": definition_fingerprint(tracked.experiment),
        "units": units,
        "runs": [dict(j, metrics=portable(j["metrics"])) for j in map(RunResult.to_json, runs)],
    }


class ShardBoard(VerdictBoard):
    """The session owner of a shard: follows the chunks as a session does, judges nothing,
    and writes every run, unit and fingerprint to the JSON report for the merge."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        shard = shard_option(config)
        assert shard is not None  # registered for shards only
        self.shard = shard

    def _judge_if_complete(self, tracked: Tracked) -> None:
        return  # verdicts are deferred to the merge

    def finish(self, reason: str) -> None:
        return  # no verdict, not even an error one: the merge says what is missing

    def _nothing_judged(self, session: pytest.Session) -> None:
        return

    @pytest.hookimpl
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        return  # no verdict to count in the progress

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        k, n = self.shard
        ran = sorted((t for t in self.tracked.values() if t.selected), key=lambda t: t.key)
        if not ran and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK  # a share may be empty; its report is not
        self.notes += summary_lines(ran, self.config.rootpath, k, n)
        super().pytest_sessionfinish(session)

    def document(self) -> dict[str, Any]:
        data = super().document()
        k, n = self.shard
        root = self.config.rootpath
        data["shard"] = {
            "index": k,
            "count": n,
            "packages": environment(root)["packages"],
            "experiments": [
                shard_experiment(t, root, n) for t in self.tracked.values() if t.selected
            ],
        }
        return data


def _spans(replicates: Iterable[range]) -> str:
    """``0-3, 8-11``: replicate ranges, adjacent ones joined."""
    spans: list[list[int]] = []
    for r in sorted(replicates, key=lambda r: r.start):
        if spans and spans[-1][1] == r.start:
            spans[-1][1] = r.stop
        else:
            spans.append([r.start, r.stop])
    return ", ".join(f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in spans)


def summary_lines(
    tracked: Sequence[Tracked], root: Path, k: int, n: int, shown: int = 20
) -> list[str]:
    """The terminal summary's lines: what shard K of N ran, and where the verdicts come from."""
    runs = sum(len(t.all_chunks[c][1]) for t in tracked for c in t.selected)
    lines = [
        f"crystallize: shard {k}/{n} ran {runs} replicates of {len(tracked)} experiments; "
        f"no verdict is judged in a shard: the verdicts come from the merge of all {n} "
        f"shards' JSON reports (--crystallize-merge)"
    ]
    for t in tracked[:shown]:
        by_condition: dict[str, list[range]] = {}
        for nodeid in t.selected:
            condition, replicates = t.all_chunks[nodeid]
            by_condition.setdefault(condition, []).append(replicates)
        parts = [f"{c} {_spans(by_condition[c])}" for c in sorted(by_condition)]
        lines.append(f"  {t.path.relative_to(root).as_posix()}::{t.name}: {'; '.join(parts)}")
    if len(tracked) > shown:
        lines.append(f"  ... and {len(tracked) - shown} more experiments (see the JSON report)")
    return lines
