"""Shard reports read back: what the merge checks (:mod:`.merge`) and what its chunks replay.

A shard (``--crystallize-shard=K/N``) writes its runs to its JSON report (``shard`` field, see
:mod:`.shards`). A merge (``--crystallize-merge``) reads every shard's report
(:func:`read_shard`); its chunk items then replay the runs from them (:func:`replayed`)
instead of running any step: each process of the merge (xdist workers too) reads the files
once, the session's owner has checked them before anything ran.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .._engine.errors import CrystallizeUsageError

MERGE = "crystallize_merge"
MERGE_PATHS = "crystallize_merge_paths"  # the files, globs expanded (:mod:`.merge`)
# How a unit ended: every run came back (some may have failed), or it stopped: a step called
# pytest.skip ("skipped"), something else stopped a replicate ("stopped"), the chunk did not
# finish (its worker crashed, its setup failed: "crashed"), the session ended first ("not run").
UNIT_STATUSES = ("ran", "failed", "skipped", "stopped", "crashed", "not run")
_HOW_TO = "make one with --crystallize-shard=K/N --crystallize-json=PATH"


@dataclass(frozen=True)
class Unit:
    """A unit a shard ran: replicates ``[start, stop)`` of one condition, and how it ended
    (``replicate`` and ``reason`` of the stop, when it did not run whole)."""

    condition: str
    start: int
    stop: int
    look: int
    status: str
    failed_runs: int
    replicate: int | None
    reason: str | None


@dataclass
class ShardExperiment:
    """One experiment in a shard report: its fingerprints, units and runs (plain JSON)."""

    file: str
    name: str
    fingerprint: str
    definition: str
    units: list[Unit]
    runs: list[dict[str, Any]]

    @property
    def key(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class ShardReport:
    """A shard's JSON report as the merge needs it."""

    path: Path
    index: int
    count: int
    packages: dict[str, Any]
    experiments: dict[str, ShardExperiment] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.path.name} (shard {self.index}/{self.count})"


def portable(value: Any) -> Any:
    """``value`` (a run's metrics) with each non-finite float as ``{"$float": "nan"}``
    (``"inf"``, ``"-inf"``): strict JSON, read back exactly by :func:`restored`."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    return value


def restored(value: Any) -> Any:
    """What :func:`portable` was given."""
    if isinstance(value, list):
        return [restored(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$float" in value:
            return float(value["$float"])
        return {k: restored(v) for k, v in value.items()}
    return value


def _refuse(path: Path, why: str) -> CrystallizeUsageError:
    return CrystallizeUsageError(
        f"--crystallize-merge: {str(path)!r} is not a shard report ({why}); {_HOW_TO}"
    )


def read_shard(path: Path) -> ShardReport:
    """The shard report at ``path``; a usage error naming it when it cannot be read, is not
    JSON or is not a shard's report."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        nonfinite = '"$float"' in text  # a run holds a non-finite value: restore them
    except OSError as exc:
        raise _refuse(path, f"it cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _refuse(path, f"it is not JSON: {exc}") from None
    shard = data.get("shard") if isinstance(data, dict) else None
    if not isinstance(shard, dict):
        raise _refuse(path, "it has no 'shard' field: the JSON report of an unsharded session?")
    try:
        report = ShardReport(
            path, int(shard["index"]), int(shard["count"]), dict(shard["packages"])
        )
        for entry in shard["experiments"]:
            units = [
                Unit(
                    str(u["condition"]),
                    int(u["replicates"][0]),
                    int(u["replicates"][1]),
                    int(u["look"]),
                    str(u["status"]),
                    int(u["failed_runs"]),
                    None if u["replicate"] is None else int(u["replicate"]),
                    None if u["reason"] is None else str(u["reason"]),
                )
                for u in entry["units"]
            ]
            experiment = ShardExperiment(
                str(entry["file"]),
                str(entry["name"]),
                str(entry["fingerprint"]),
                str(entry["definition"]),
                units,
                [dict(r, metrics=restored(r["metrics"])) for r in entry["runs"]]
                if nonfinite
                else list(entry["runs"]),
            )
            report.experiments[experiment.key] = experiment
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _refuse(path, f"its 'shard' field is malformed: {exc!r}") from None
    return report


@dataclass
class _Stop:
    condition: str
    start: int
    stop: int
    replicate: int
    kind: str
    reason: str


class Replay:
    """Every run of the shards by experiment and (condition, replicate), and where a unit
    stopped, for the merge's chunks to replay."""

    def __init__(self, reports: list[ShardReport]) -> None:
        self.runs: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}
        self.stops: dict[str, list[_Stop]] = {}
        for report in reports:
            for key, experiment in report.experiments.items():
                runs = self.runs.setdefault(key, {})
                for run in experiment.runs:
                    runs[(run["condition"], int(run["replicate"]))] = run
                for unit in experiment.units:
                    if unit.status in ("ran", "failed") or unit.replicate is None:
                        continue
                    kind = "skipped" if unit.status == "skipped" else "stopped"
                    reason = unit.reason or unit.status
                    if unit.status in ("crashed", "not run"):
                        reason = f"{unit.status} in {report.label}: {reason}"
                    self.stops.setdefault(key, []).append(
                        _Stop(unit.condition, unit.start, unit.stop, unit.replicate, kind, reason)
                    )

    def chunk(
        self, key: str, condition: str, replicates: range
    ) -> tuple[list[dict[str, Any]], tuple[int, str, str] | None]:
        """The runs (``RunResult.to_json()``) of replicates ``replicates`` of ``condition`` of
        experiment ``key`` (its node id), up to the first that did not come back, and
        ``(replicate, kind, reason)`` of that one (None when all did)."""
        runs = self.runs.get(key, {})
        found: list[dict[str, Any]] = []
        for replicate in replicates:
            run = runs.get((condition, replicate))
            if run is None:
                return found, self._stop(key, condition, replicate)
            found.append(run)
        return found, None

    def _stop(self, key: str, condition: str, replicate: int) -> tuple[int, str, str]:
        for stop in self.stops.get(key, ()):
            if stop.condition == condition and stop.start <= replicate < stop.stop:
                return replicate, stop.kind, stop.reason
        return replicate, "stopped", MISSING


_REPLAY = pytest.StashKey[Replay]()
# Why a replicate the merge selected has no run: no shard held it.
MISSING = (
    "in none of the shards merged: merge with the selection the shards ran (the same paths, "
    "-k and -m), or run shards of this selection"
)


def replayed(config: pytest.Config) -> Replay | None:
    """This process's replay of the merged shards (None outside a merge): read once."""
    workerinput = getattr(config, "workerinput", None)  # xdist's worker: from its controller
    paths = (workerinput or vars(config.option)).get(MERGE_PATHS)
    if not paths:
        return None
    replay = config.stash.get(_REPLAY, None)
    if replay is None:
        replay = config.stash[_REPLAY] = Replay([read_shard(Path(p)) for p in paths])
    return replay


def use_reports(config: pytest.Config, reports: list[ShardReport]) -> None:
    """The session owner's replay, from the reports it has read and checked already."""
    config.stash[_REPLAY] = Replay(reports)
