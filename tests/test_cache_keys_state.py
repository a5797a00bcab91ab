"""The cache key follows what a step reads besides its arguments.

Module-level data the step's code reads (a dict, a list, a numpy array, a dataclass, an
object's attributes) is digested by content when the key is made; files declared with
``depends_on`` count by their contents; a context value read through ``ctx[...]`` keys the
entry, so a baseline and a treatment that give it different values each hit on the next run
and never get each other's output; ``apply(seed=...)`` keys the seed its ``ctx.rng`` uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _support import TWO_WORKERS, chunks, with_and_without_workers

from pytest_crystallize import (
    CachePlugin,
    CrystallizeUsageError,
    Experiment,
    ExperimentDefinitionError,
    FrozenContext,
    SeedPlugin,
    data_source,
    pipeline_step,
    treatment,
)
from pytest_crystallize._engine import state
from pytest_crystallize._engine.cache import CacheEntry, CacheStats, StepCache
from pytest_crystallize._engine.cached import ReadsManifest
from pytest_crystallize._engine.codeprint import code_print
from pytest_crystallize._engine.fingerprint import digest_value
from pytest_crystallize._engine.seeds import replicate_seed

pytestmark = pytest.mark.usefixtures("private_cache_key")

Loader = Callable[[str, str], ModuleType]


@pytest.fixture(autouse=True)
def own_folder(request: pytest.FixtureRequest) -> None:
    """Script tests run in their own folder (their cache goes to ``./.crystallize``);
    pytester tests run in pytester's."""
    if "ourtester" not in request.fixturenames:
        request.getfixturevalue("in_tmp_path")


def outs(result: Any, condition: str = "baseline") -> list[float]:
    metrics = result.metrics.baseline if condition == "baseline" else None
    if metrics is None:
        metrics = result.metrics.treatments[condition]
    return [float(v) for v in metrics.metrics["out"]]


def counts(result: Any) -> tuple[int, int]:
    return result.cache_stats["hits"], result.cache_stats["misses"]


# --- module state -------------------------------------------------------------------------

STATE = """\
from __future__ import annotations

import dataclasses

import numpy as np

from pytest_crystallize import Experiment, data_source, pipeline_step


@dataclasses.dataclass
class Settings:
    factor: float = 1.0


class Model:
    def __init__(self) -> None:
        self.weight = 1.0


TABLE = {"scale": 1.0}
OFFSETS = [0.0, 0.0]
WEIGHTS = np.zeros(3)
SETTINGS = Settings()
MODEL = Model()
CALLS = []  # only written: a log the step keeps does not change its key


@data_source
def ten(ctx):
    return 10.0


@pipeline_step(cacheable=True)
def combine(value, ctx):
    CALLS.append(value)
    scaled = value * TABLE["scale"] * SETTINGS.factor * MODEL.weight
    return scaled + sum(OFFSETS) + float(WEIGHTS.sum())


@pipeline_step()
def record(value, ctx):
    return value, {"out": value}


def build():
    return (
        Experiment.builder("state").datasource(ten()).add_step(combine()).add_step(record())
        .replicates(2).build()
    )
"""

EDITS: dict[str, Callable[[ModuleType, Loader], ModuleType]] = {
    "dict": lambda m, load: setattr_item(m.TABLE, "scale", 2.0, m),
    "list": lambda m, load: setattr_item(m.OFFSETS, 1, 10.0, m),
    "numpy array": lambda m, load: setattr_item(m.WEIGHTS, 2, 10.0, m),
    "dataclass instance": lambda m, load: setattr_attr(m.SETTINGS, "factor", 2.0, m),
    "object attribute": lambda m, load: setattr_attr(m.MODEL, "weight", 2.0, m),
    "source edit": lambda m, load: load("state_step", STATE.replace('"scale": 1.0', '"scale": 2')),
}


def setattr_item(container: Any, key: Any, value: Any, module: ModuleType) -> ModuleType:
    container[key] = value
    return module


def setattr_attr(obj: Any, name: str, value: Any, module: ModuleType) -> ModuleType:
    setattr(obj, name, value)
    return module


@pytest.mark.parametrize("edit", list(EDITS))
def test_editing_module_level_data_the_step_reads_recomputes_and_unchanged_data_hits(
    load: Loader, edit: str
) -> None:
    module = load("state_step", STATE)
    cold = module.build().run()
    assert (counts(cold), outs(cold)) == ((0, 2), [10.0, 10.0])
    warm = module.build().run()
    assert (counts(warm), outs(warm)) == ((2, 0), [10.0, 10.0])
    assert len(module.CALLS) == 2  # served: the step did not run (its log is not its key)

    module = EDITS[edit](module, load)
    edited = module.build().run()
    assert counts(edited) == (0, 2)
    assert outs(edited) == [20.0, 20.0]  # not the stale 10.0
    again = module.build().run()
    assert (counts(again), outs(again)) == ((2, 0), [20.0, 20.0])


READS_AND_WRITES = """\
import numpy as np

LOG = []
COUNTS = {"n": 0}
TABLE = {"a": 1.0}
ARRAY = np.zeros(3)


def only_writes(value, key):
    LOG.append(value)  # a log, a counter, an item set or deleted: the content is not read
    COUNTS["n"] += 1
    COUNTS[key] = value
    del COUNTS[key]
    ARRAY[0] = value
    return value


def reads(value, out):
    out[0] = TABLE  # stored into another container: read
    return value + ARRAY.sum() + LOG[-1] + len(COUNTS)
"""


def test_the_code_print_lists_module_data_the_code_reads_not_data_it_only_writes(
    load: Loader,
) -> None:
    module = load("reads_writes", READS_AND_WRITES)
    assert code_print(module.only_writes).state == ()
    labels = [ref.label for ref in code_print(module.reads).state]
    assert labels == [f"reads_writes.{name}" for name in ("ARRAY", "COUNTS", "LOG", "TABLE")]


def test_membership_and_listing_the_context_count_as_reads() -> None:
    ctx = FrozenContext({"a": 1, "b": 2})
    with ctx.recording_reads() as reads:
        assert "c" not in ctx
    assert reads == {"c"}
    for listing in (list, len, lambda c: c.keys(), lambda c: c.as_dict()):
        with ctx.recording_reads() as reads:
            listing(ctx)
        assert reads == {"a", "b"}


CYCLES = """\
import numpy as np

from pytest_crystallize import Experiment, data_source, pipeline_step

GRAPH = {"weight": 1.0}
GRAPH["self"] = GRAPH  # a reference cycle
ROWS = [[float(i)] for i in range(200)]  # past the walk's budget (lowered by the test)
BIG = np.zeros(400_000)  # 3.2 MB: the keyed buffer hash


@data_source
def ten(ctx):
    return 10.0


@pipeline_step(cacheable=True)
def combine(value, ctx):
    return value * GRAPH["self"]["weight"] + ROWS[-1][0] + float(BIG[-1])


@pipeline_step()
def record(value, ctx):
    return value, {"out": value}


def build():
    return (
        Experiment.builder("cycles").datasource(ten()).add_step(combine()).add_step(record())
        .replicates(1).build()
    )
"""


def test_cycles_large_values_and_values_past_the_walk_budget_are_digested_by_content(
    load: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "MAX_NODES", 50)  # ROWS's last rows are pickled whole
    module = load("cycle_step", CYCLES)
    assert counts(module.build().run()) == (0, 1)
    assert counts(module.build().run()) == (1, 0)
    edits = [
        lambda: module.GRAPH.__setitem__("weight", 2.0),
        lambda: module.ROWS[-1].__setitem__(0, 1000.0),
        lambda: module.BIG.__setitem__(-1, 5.0),
    ]
    expected = [219.0, 1020.0, 1025.0]
    for change, value in zip(edits, expected, strict=True):
        change()
        result = module.build().run()
        assert (counts(result), outs(result)) == ((0, 1), [value])
    assert counts(module.build().run()) == (1, 0)


UNDIGESTIBLE = """\
import threading

from pytest_crystallize import Experiment, data_source, pipeline_step


class Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = 1.0


HOLDERS = [Holder()]


@data_source
def ten(ctx):
    return 10.0


@pipeline_step(cacheable=True)
def combine(value, ctx):
    return value * HOLDERS[0].value


def build():
    return (
        Experiment.builder("undigestible").datasource(ten()).add_step(combine()).replicates(1)
        .build()
    )
"""


def test_module_data_that_cannot_be_digested_is_an_error_naming_the_value(
    load: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "MAX_NODES", 0)  # pickled whole at once: the lock refuses
    module = load("undigestible_step", UNDIGESTIBLE)
    (error,) = module.build().run().errors.values()
    assert (error.stage, error.where) == ("step", "combine")
    assert "cannot digest the module-level value undigestible_step.HOLDERS" in error.message
    assert "__crystallize_digest__" in error.message


# --- depends_on ---------------------------------------------------------------------------

DEPENDS = """\
import json
from pathlib import Path

from pytest_crystallize import Experiment, data_source, pipeline_step

HERE = Path(__file__).parent


@data_source
def one(ctx):
    return 1.0


@pipeline_step(cacheable=True, depends_on=["params.json", "data/*.csv"])
def load_files(value, ctx):
    scale = json.loads((HERE / "params.json").read_text())["scale"]
    rows = sum(len(p.read_text().splitlines()) for p in (HERE / "data").glob("*.csv"))
    return value * scale + rows


@pipeline_step()
def record(value, ctx):
    return value, {"out": value}


def build():
    return (
        Experiment.builder("files").datasource(one()).add_step(load_files()).add_step(record())
        .replicates(1).build()
    )
"""


def test_depends_on_files_key_the_entry_relative_to_the_steps_folder(
    load: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "user_code"
    module = load("files_step", DEPENDS)
    (folder / "params.json").write_text(json.dumps({"scale": 2.0}))
    (folder / "data").mkdir()
    (folder / "data" / "a.csv").write_text("1\n2\n")
    (folder / "data" / "b.csv").write_text("3\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # patterns are relative to the step's file, not the cwd

    def run() -> tuple[tuple[int, int], list[float]]:
        result = module.build().run()
        return counts(result), outs(result)

    assert run() == ((0, 1), [5.0])
    assert run() == ((1, 0), [5.0])
    (folder / "data" / "b.csv").write_text("3\n4\n")  # a file edited
    assert run() == ((0, 1), [6.0])
    (folder / "data" / "c.csv").write_text("5\n")  # a file the glob now matches too
    assert run() == ((0, 1), [7.0])
    (folder / "params.json").write_text(json.dumps({"scale": 3.0}))
    assert run() == ((0, 1), [8.0])
    assert run() == ((1, 0), [8.0])

    (folder / "params.json").unlink()
    with pytest.raises(ExperimentDefinitionError) as missing:
        module.build().run()
    message = str(missing.value)
    assert "step 'load_files': depends_on pattern 'params.json' does not exist in" in message
    assert str(folder) in message
    (folder / "params.json").write_text("{}")
    for path in (folder / "data").glob("*.csv"):
        path.unlink()
    with pytest.raises(ExperimentDefinitionError, match=r"'data/\*\.csv' matches no file in"):
        module.build().run()


@pytest.mark.parametrize("value", [5, ["params.json", 3], "", ["data/*.csv", "  "], {"a": 1}])
def test_a_bad_depends_on_is_refused_at_decoration_naming_the_step_and_the_value(
    value: Any,
) -> None:
    def fetch(data: Any, ctx: Any) -> Any:
        return data

    with pytest.raises(CrystallizeUsageError) as info:
        pipeline_step(cacheable=True, depends_on=value)(fetch)
    message = str(info.value)
    assert "depends_on" in message
    assert "'fetch'" in message
    assert repr(value) in message


def test_depends_on_without_cacheable_is_refused_at_decoration() -> None:
    def fetch(data: Any, ctx: Any) -> Any:
        return data

    with pytest.raises(CrystallizeUsageError) as info:
        pipeline_step(depends_on="params.json")(fetch)
    assert str(info.value) == (
        "step 'fetch': depends_on='params.json' only adds files to the cache key of a "
        "cacheable step; add cacheable=True or drop depends_on"
    )


# --- context values -----------------------------------------------------------------------


def _executed(log: str) -> None:
    with open(log, "a") as handle:
        handle.write("ran\n")


@data_source
def ten(ctx: Any) -> float:
    return 10.0


@pipeline_step(cacheable=True)
def scaled(value: float, ctx: Any, *, log: str) -> float:
    _executed(log)
    if "bonus" in ctx:  # a key only one treatment adds: the baseline's entry is not its
        return value * ctx["scale"] + ctx["bonus"]
    return value * ctx["scale"]


@pipeline_step()
def record(value: float, ctx: Any) -> Any:
    return value, {"out": value}


def reads_experiment(log: Path, up: float = 5.0, replicates: int = 2) -> Experiment:
    return (
        Experiment.builder("reads")
        .datasource(ten())
        .add_step(scaled(log=str(log)))
        .add_step(record())
        .initial_ctx({"scale": 1.0})
        .treatments([treatment("up", {"scale": up}), treatment("bonus", {"bonus": 1.0})])
        .replicates(replicates)
        .build()
    )


def test_a_treatment_value_read_through_ctx_hits_for_every_condition_on_the_next_run(
    tmp_path: Path,
) -> None:
    log = tmp_path / "scaled.log"
    cold = reads_experiment(log).run()
    assert counts(cold) == (0, 6)
    warm = reads_experiment(log).run()
    assert counts(warm) == (6, 0)
    assert len(log.read_text().splitlines()) == 6
    for result in (cold, warm):  # each condition its own value, never another's
        assert outs(result) == [10.0, 10.0]
        assert outs(result, "up") == [50.0, 50.0]
        assert outs(result, "bonus") == [11.0, 11.0]
    changed = reads_experiment(log, up=7.0).run()
    assert counts(changed) == (4, 2)  # only the treatment whose value changed recomputes
    assert outs(changed, "up") == [70.0, 70.0]
    assert outs(changed) == [10.0, 10.0]
    assert outs(changed, "bonus") == [11.0, 11.0]
    back = reads_experiment(log).run()
    assert counts(back) == (6, 0)  # both values of "up" keep their entries
    assert outs(back, "up") == [50.0, 50.0]


def test_an_entry_whose_recorded_reads_differ_from_the_runs_values_is_never_served(
    tmp_path: Path,
) -> None:
    log = tmp_path / "scaled.log"
    assert outs(reads_experiment(log, replicates=1).run(), "up") == [50.0]
    cache = StepCache(tmp_path / ".crystallize" / "cache")
    loaded = {path.stem: cache.load(path.stem, CacheStats()) for path, _ in cache.entries()}
    manifests = [k for k, e in loaded.items() if e and isinstance(e.output, ReadsManifest)]
    (baseline,) = [k for k, e in loaded.items() if e and e.output == 10.0]
    # The conditions share the key: one manifest, naming what the step read; three entries.
    assert len(manifests) == 1
    assert len(loaded) == 4
    manifest = loaded[manifests[0]]
    assert manifest is not None
    assert manifest.output == ReadsManifest((("bonus", "scale"),))
    # Genuine signatures, forged contents: the entry a lookup finds recorded another value
    # of "scale", and so does a plain entry put in place of the manifest.
    stale = (("scale", digest_value(99.0)),)
    cache.store(baseline, CacheEntry(-1.0, (), (), (), stale, 0.0), CacheStats())
    result = reads_experiment(log, replicates=1).run()
    assert outs(result) == [10.0]
    assert counts(result) == (2, 1)
    cache.store(manifests[0], CacheEntry(-2.0, (), (), (), stale, 0.0), CacheStats())
    result = reads_experiment(log, replicates=1).run()
    assert (outs(result), outs(result, "up"), outs(result, "bonus")) == ([10.0], [50.0], [11.0])
    assert counts(result) == (2, 1)  # the baseline recomputes and writes the manifest anew


# --- the seed of apply() ------------------------------------------------------------------


@pipeline_step(cacheable=True)
def noisy(value: float, ctx: Any) -> float:
    return value + float(ctx.rng.normal())


def seeded(*plugins: Any) -> Experiment:
    return (
        Experiment.builder("seeded")
        .datasource(ten())
        .add_step(noisy())
        .add_step(record())
        .replicates(1)
        .plugins([SeedPlugin(seed=7), *plugins])
        .build()
    )


def test_apply_keys_the_seed_its_ctx_rng_draws_from() -> None:
    uncached = seeded(CachePlugin(enabled=False))
    assert uncached.apply(seed=1) == uncached.apply(seed=1) != uncached.apply(seed=2)
    # Replicate 0's own seed, given to apply(): the same run seed, but ctx.rng derives from
    # it rather than from the root, so the replicate's cached output is not the answer.
    (run_zero,) = outs(seeded().run())
    same_seed = replicate_seed(7, 0)
    expected = uncached.apply(seed=same_seed)
    assert expected != run_zero
    assert seeded().apply(seed=same_seed) == expected
    assert seeded().apply(seed=same_seed) == expected  # now from the cache
    assert seeded().apply(seed=3) == uncached.apply(seed=3)


# --- under pytest ---------------------------------------------------------------------------

PYTEST_READS = """\
from pytest_crystallize import Experiment, data_source, pipeline_step, treatment


@data_source
def base(ctx):
    return 10.0


@pipeline_step(cacheable=True)
def scaled(value, ctx):
    return value * ctx["scale"] + float(ctx.rng.normal(0.0, 0.01))


@pipeline_step()
def record(value, ctx):
    return value, {"score": value}


reads = (
    Experiment.builder("reads")
    .datasource(base())
    .add_step(scaled())
    .add_step(record())
    .initial_ctx({"scale": 1.0})
    .treatments([treatment("up", {"scale": 5.0})])
    .replicates(4)
    .build()
)
"""


@with_and_without_workers
def test_a_second_session_serves_every_run_of_a_step_reading_a_treatment_value(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(experiment_reads=PYTEST_READS)
    items = 2 * chunks(dist, 4)
    first = ourtester.runpytest("--crystallize", "-v", *dist)
    first.assert_outcomes(passed=items)
    first.stdout.fnmatch_lines(["*step cache: 0 hits, 8 misses*"])
    second = ourtester.runpytest("--crystallize", "-v", *dist)
    second.assert_outcomes(passed=items)
    second.stdout.fnmatch_lines(["*step cache: 8 hits, 0 misses*"])
    assert second.stdout.str().count("PASSED (cached)") == items
    if dist == TWO_WORKERS:
        second.stdout.fnmatch_lines(["*PASSED (cached) experiment_reads.py::reads::up::chunk-3*"])
