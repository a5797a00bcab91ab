"""Public API that no other test module exercises: ``Experiment.debug`` and ``apply(seed=...)``,
``LoggingContext``, ``load_metrics`` and ``load_all_metrics``, the data-source registry, and the
cache key of enums, paths, dataclasses, numpy scalars, object arrays and builtin subclasses."""

from __future__ import annotations

import dataclasses
import enum
import logging
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest

from pytest_crystallize import (
    ArtifactPlugin,
    Experiment,
    LoggingContext,
    clear_registry,
    data_source,
    get_datasource,
    list_datasources,
    load_all_metrics,
    load_metrics,
    pipeline_step,
    register_datasource,
    standalone_context,
    treatment,
    unregister_datasource,
)
from pytest_crystallize._engine.fingerprint import digest_value

pytestmark = pytest.mark.usefixtures("in_tmp_path")


@data_source
def replicate_number(ctx):
    return ctx["replicate"]


@data_source
def the_seed(ctx):
    return ctx["seed"]


@pipeline_step()
def scale(x, ctx, *, k=1):
    return x * k, {"value": x * k}


def build(
    treatments: list[Any], *, source: Any = None, plugins: list[Any] | None = None
) -> Experiment:
    builder = (
        Experiment.builder("demo")
        .datasource(source if source is not None else replicate_number())
        .add_step(scale())
        .treatments(treatments)
        .replicates(2)
    )
    if plugins is not None:
        builder = builder.plugins(plugins)
    return builder.build()


# --- Experiment.debug and apply(seed=...) ---------------------------------------------------


def test_debug_runs_one_replicate_of_the_baseline_and_logs_every_step(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exp = build([treatment("double", {"k": 2})])
    with caplog.at_level(logging.DEBUG):
        result = exp.debug()
    assert result.conditions == ("baseline",)
    assert [(r.condition, r.replicate) for r in result.runs] == [("baseline", 0)]
    assert "step 'scale' starts" in caplog.text
    assert "step 'scale' done" in caplog.text
    assert exp.replicates == 2  # the experiment itself is unchanged


def test_debug_with_a_treatment_runs_it_beside_the_baseline_and_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    double = treatment("double", {"k": 2})
    exp = build([double, treatment("triple", {"k": 3})])
    with caplog.at_level(logging.DEBUG):
        by_name = exp.debug("triple", verbose=False)
    assert by_name.conditions == ("baseline", "triple")
    assert [r.metrics["value"] for r in by_name.runs] == [(0,), (0,)]
    assert "step 'scale' starts" not in caplog.text
    assert exp.debug(double).conditions == ("baseline", "double")


def test_apply_with_a_seed_gives_the_run_that_seed() -> None:
    exp = build([treatment("double", {"k": 2})], source=the_seed())
    assert exp.apply(seed=7) == 7
    assert exp.apply("double", seed=7) == 14
    assert exp.apply() == exp.apply(seed=None) != 7  # replicate 0's own seed
    assert exp.apply(data=5) == 5


# --- LoggingContext -----------------------------------------------------------------------


def test_logging_context_records_and_logs_the_keys_a_step_reads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = standalone_context({"alpha": 0.05, "unused": 1})
    logged = LoggingContext(ctx, logging.getLogger("reads"))
    with caplog.at_level(logging.DEBUG, logger="reads"):
        assert logged["alpha"] == 0.05
        assert logged.get("missing", "fallback") == "fallback"
        assert logged.get("alpha") == 0.05
    assert logged.reads == {"alpha": 0.05}
    assert "context read 'alpha' -> 0.05" in caplog.text
    assert "missing" not in caplog.text
    # It is a view: what a step records through it is the wrapped context's.
    logged.metrics.add("score", 1.5)
    assert ctx.metrics.as_dict() == {"score": (1.5,)}


def test_logging_context_defaults_to_the_wrapped_contexts_logger() -> None:
    ctx = standalone_context({"a": 1}, logger=logging.getLogger("own"))
    assert LoggingContext(ctx).logger is ctx.logger


# --- load_metrics and load_all_metrics ----------------------------------------------------


def test_load_metrics_reads_the_newest_or_a_given_version(tmp_path: Path) -> None:
    artifacts = ArtifactPlugin(root_dir=tmp_path / "arts", versioned=True)
    build([treatment("double", {"k": 2}), treatment("triple", {"k": 3})], plugins=[artifacts]).run()
    again = ArtifactPlugin(root_dir=tmp_path / "arts", versioned=True)
    build([treatment("double", {"k": 20})], plugins=[again]).run()
    folder = tmp_path / "arts" / "demo"

    assert load_metrics(folder) == (1, {"value": [0, 1]}, {"double": {"value": [0, 20]}})
    assert load_metrics(str(folder), version=0) == (
        0,
        {"value": [0, 1]},
        {"double": {"value": [0, 2]}, "triple": {"value": [0, 3]}},
    )
    # Each treatment from the newest version that has it.
    assert load_all_metrics(folder) == (
        1,
        {"value": [0, 1]},
        {"double": (1, {"value": [0, 20]}), "triple": (0, {"value": [0, 3]})},
    )
    assert load_all_metrics(folder, version=0) == (
        0,
        {"value": [0, 1]},
        {"double": (0, {"value": [0, 2]}), "triple": (0, {"value": [0, 3]})},
    )


def test_load_metrics_of_an_experiment_that_saved_nothing(tmp_path: Path) -> None:
    assert load_metrics(tmp_path / "nothing") == (-1, {}, {})
    assert load_all_metrics(tmp_path / "nothing") == (-1, {}, {})


# --- the data-source registry --------------------------------------------------------------


@pytest.fixture
def registry() -> Any:
    """The registry as other modules left it is restored afterwards."""
    saved = {name: get_datasource(name) for name in list_datasources()}
    yield
    clear_registry()
    for name, source in saved.items():
        register_datasource(name, source)


@pytest.mark.usefixtures("registry")
def test_registering_listing_getting_and_unregistering_data_sources() -> None:
    first, second = replicate_number(), the_seed()
    register_datasource("gap-first", first)
    register_datasource("gap-second", second)
    assert {"gap-first", "gap-second"} <= set(list_datasources())
    assert list_datasources() == sorted(list_datasources())
    assert get_datasource("gap-second") is second
    with pytest.raises(Exception, match="'gap-first' is already registered"):
        register_datasource("gap-first", second)
    unregister_datasource("gap-first")
    unregister_datasource("gap-first")  # an unknown name is ignored
    with pytest.raises(KeyError, match="no data source registered as 'gap-first'"):
        get_datasource("gap-first")
    clear_registry()
    assert list_datasources() == []
    with pytest.raises(KeyError, match="registered: none"):
        get_datasource("gap-second")


# --- cache keys of values with no dedicated test ----------------------------------------------


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Shade(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Vector:
    x: float
    y: float


class Count(int):
    pass


def test_enum_members_key_by_class_and_name_not_by_value() -> None:
    assert digest_value(Color.RED) == digest_value(Color.RED)
    assert len({digest_value(v) for v in (Color.RED, Color.BLUE, Shade.RED, 1, "RED")}) == 5


def test_paths_key_by_their_text_and_differ_from_strings() -> None:
    assert digest_value(Path("a/b")) == digest_value(Path("a") / "b")
    assert digest_value(Path("a/b")) == digest_value(PurePosixPath("a/b"))
    assert digest_value(Path("a/b")) != digest_value("a/b")
    assert digest_value(Path("a/b")) != digest_value(Path("a/c"))


def test_dataclasses_key_by_class_and_fields() -> None:
    assert digest_value(Point(1, 2)) == digest_value(Point(1, 2))
    assert digest_value(Point(1, 2)) != digest_value(Point(1.0, 2.0))  # field types count
    assert digest_value(Point(1, 2)) != digest_value(Point(2, 1))
    assert digest_value(Point(1, 2)) != digest_value(Vector(1, 2))
    assert digest_value(Point(1, 2)) != digest_value((1, 2))
    # A dataclass *class* is not a value of it.
    assert digest_value(Point) != digest_value(Vector)


def test_numpy_scalars_key_by_dtype_and_bytes() -> None:
    assert digest_value(np.float64(1.5)) == digest_value(np.float64(1.5))
    keys = {digest_value(v) for v in (np.float64(1.5), np.float32(1.5), np.float64(2.5), 1.5)}
    assert len(keys) == 4
    assert digest_value(np.int64(3)) != digest_value(np.int32(3))


def test_object_arrays_key_by_their_items_shape_and_dtype() -> None:
    values = np.array([1, "a", None], dtype=object)
    assert digest_value(values) == digest_value(np.array([1, "a", None], dtype=object))
    assert digest_value(values) != digest_value(np.array([1, "b", None], dtype=object))
    assert digest_value(values) != digest_value([1, "a", None])
    assert digest_value(values) != digest_value(values.reshape(3, 1))


def test_subclasses_of_builtins_key_by_their_class_and_value() -> None:
    assert digest_value(Count(3)) == digest_value(Count(3))
    assert digest_value(Count(3)) != digest_value(3)
    assert digest_value(Count(3)) != digest_value(Count(4))


def test_a_large_buffer_is_keyed_by_its_content() -> None:
    big = np.zeros(1_100_000, dtype=np.float64)  # over 8 MB: hashed in two halves
    other = big.copy()
    other[-1] = 1.0
    assert digest_value(big) == digest_value(big.copy())
    assert digest_value(big) != digest_value(other)


def test_a_value_that_cannot_be_pickled_has_no_cache_key() -> None:
    with pytest.raises(TypeError, match="cannot compute a cache key for a generator value"):
        digest_value(i for i in range(3))
