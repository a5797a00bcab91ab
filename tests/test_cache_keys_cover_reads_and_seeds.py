"""A cache hit is only served when everything the step read is what it was.

A cacheable step may read the context directly (``ctx["scale"]``) instead of taking the value
as a parameter; and ``apply(seed=...)`` replaces the run's seed. Both must reach the decision
to serve a cached output: a different value or seed recomputes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_crystallize import CachePlugin, Experiment, data_source, pipeline_step


@data_source
def ten(ctx: Any) -> float:
    return 10.0


@pipeline_step(cacheable=True)
def scaled(data: float, ctx: Any) -> float:
    return data * ctx["scale"]


@pipeline_step(cacheable=True)
def noisy(data: float, ctx: Any) -> float:
    return data + float(ctx.rng.normal())


@pipeline_step()
def record(data: float, ctx: Any) -> float:
    ctx.metrics.add("out", data)
    return data


def build(tmp_path: Path, step: Any, **initial: Any) -> Experiment:
    return (
        Experiment.builder("reads")
        .datasource(ten())
        .add_step(step)
        .add_step(record())
        .initial_ctx(initial)
        .replicates(2)
        .plugins([CachePlugin(root_dir=tmp_path / "cache")])
        .build()
    )


def test_a_context_value_read_by_the_step_that_changed_recomputes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = build(tmp_path, scaled(), scale=2).run()
    assert first.metrics.baseline.metrics["out"] == [20.0, 20.0]

    again = build(tmp_path, scaled(), scale=2).run()
    assert (again.cache_stats["hits"], again.cache_stats["misses"]) == (2, 0)

    changed = build(tmp_path, scaled(), scale=5).run()
    assert changed.metrics.baseline.metrics["out"] == [50.0, 50.0]  # not the stale 20.0
    assert (changed.cache_stats["hits"], changed.cache_stats["misses"]) == (0, 2)


def test_apply_with_another_seed_is_not_served_the_first_seeds_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    experiment = build(tmp_path, noisy())
    one = experiment.apply(seed=1)
    assert experiment.apply(seed=1) == one  # the same seed: the same output (a hit)
    two = experiment.apply(seed=2)
    assert two != one
    assert build(tmp_path, noisy()).apply(seed=2) == two
