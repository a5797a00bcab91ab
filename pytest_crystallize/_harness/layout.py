"""How an experiment's replicates are cut into chunk items, and, across CI jobs, into shards.

Without shards, each condition's replicates are cut by :func:`chunk_layout`, which depends on
the experiment and the number of xdist workers only, so every worker (and the controller,
which does not collect) computes the same layout.

With ``--crystallize-shard=K/N``, the replicates are first cut into *units* that depend on the
experiment and N alone (:func:`unit_ranges`: each look's new replicates in at most N nearly
equal parts), the same in every shard and in the merge whatever the number of workers; a
shard's chunks are its units cut further for its workers (:func:`shard_layout`), so a chunk
never spans two units. Which shard runs a unit is :mod:`.shards`' business.
"""

from __future__ import annotations

import math

import pytest

from .._engine.experiment import Experiment

WORKERS_KEY = "crystallize_workers"


def worker_count(config: pytest.Config) -> int:
    """The number of xdist workers the chunk layout is made for (1 without xdist)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return int(workerinput.get(WORKERS_KEY, workerinput.get("workercount", 1)))
    if config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") != "no":
        total = 0
        for spec in config.getoption("tx", None) or []:
            count, star, _ = str(spec).partition("*")
            total += int(count) if star and count.isdigit() else 1
        return max(total, 1)
    return 1


def chunk_ranges(
    replicates: int, conditions: int, workers: int, per_worker: int = 4
) -> list[range]:
    """Split ``replicates`` into chunks so that all conditions together keep workers busy.

    About ``per_worker`` chunks per worker, so the scheduler can balance; a single process
    gets one chunk per condition (fewer items, less overhead).
    """
    wanted = 1 if workers <= 1 else math.ceil(per_worker * workers / max(conditions, 1))
    chunks = max(1, min(replicates, wanted))
    size = math.ceil(replicates / chunks)
    return [range(start, min(start + size, replicates)) for start in range(0, replicates, size)]


def _segments(experiment: Experiment) -> list[tuple[int, range]]:
    """``(look, replicates)`` of each look's new replicates; one look without a design."""
    design = experiment.sequential
    if design is None:
        return [(1, range(experiment.replicates))]
    segments: list[tuple[int, range]] = []
    start = 0
    for look, end in enumerate(design.schedule(experiment.replicates), start=1):
        if end > start:
            segments.append((look, range(start, end)))
        start = max(start, end)
    return segments


def chunk_layout(experiment: Experiment, conditions: int, workers: int) -> list[tuple[int, range]]:
    """``(look, replicates)`` of each chunk of one condition, in replicate order: all look 1
    without a sequential design, else each look's new replicates chunked by ``chunk_ranges``:
    about two chunks per worker and look (the looks of the experiments take turns, so the
    workers stay busy with fewer, longer items)."""
    per_worker = 4 if experiment.sequential is None else 2
    return [
        (look, range(segment.start + r.start, segment.start + r.stop))
        for look, segment in _segments(experiment)
        for r in chunk_ranges(len(segment), conditions, workers, per_worker)
    ]


def unit_ranges(experiment: Experiment, shards: int) -> list[tuple[int, range]]:
    """``(look, replicates)`` of each unit of one condition: each look's new replicates in
    ``min(shards, count)`` contiguous parts whose sizes differ by one at most."""
    units: list[tuple[int, range]] = []
    for look, segment in _segments(experiment):
        parts = min(shards, len(segment))
        size, extra = divmod(len(segment), parts)
        start = segment.start
        for part in range(parts):
            stop = start + size + (part < extra)
            units.append((look, range(start, stop)))
            start = stop
    return units


def shard_layout(
    experiment: Experiment, conditions: int, workers: int, shards: int
) -> list[tuple[int, range]]:
    """``(look, replicates)`` of each chunk of one condition in a shard: every unit, cut for
    the workers as ``chunk_layout`` cuts a look (a shard runs about one unit in N)."""
    per_worker = 4 if experiment.sequential is None else 2
    return [
        (look, range(unit.start + r.start, unit.start + r.stop))
        for look, unit in unit_ranges(experiment, shards)
        for r in chunk_ranges(len(unit), conditions, workers, per_worker)
    ]


SHARD = "crystallize_shard"


def shard_option(config: pytest.Config) -> tuple[int, int] | None:
    """``(K, N)`` of ``--crystallize-shard=K/N``, None outside a shard."""
    value = config.getoption(SHARD, None)
    return (int(value[0]), int(value[1])) if value else None


def session_layout(
    config: pytest.Config, experiment: Experiment, conditions: int
) -> list[tuple[int, range]]:
    """The chunks of one condition of ``experiment`` in this session (a shard's, or not)."""
    shard = shard_option(config)
    workers = worker_count(config)
    if shard is not None:
        return shard_layout(experiment, conditions, workers, shard[1])
    return chunk_layout(experiment, conditions, workers)
