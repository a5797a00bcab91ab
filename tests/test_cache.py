"""The step cache in scripts: sound keys, replayed side effects, storage, signed entries."""

from __future__ import annotations

import contextlib
import hmac
import importlib.util
import io
import multiprocessing
import os
import pickle
import queue
import random
import stat
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_crystallize import (
    ArtifactPlugin,
    CrystallizeUsageError,
    Experiment,
    RunPlan,
    data_source,
    pipeline_step,
    treatment,
)
from pytest_crystallize._engine.cache import (
    _MAGIC,
    CacheEntry,
    CachePlugin,
    CacheStats,
    StepCache,
    signing_key,
)

# When a property fails, hypothesis's pytest plugin imports libcst, whose import warns about
# mypy_extensions.TypedDict in some versions; under `filterwarnings = error` that turns the
# failure into an INTERNALERROR. Import it once here with the warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.suppress(ImportError):
        import hypothesis.extra._patching  # noqa: F401

PROPERTIES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


pytestmark = pytest.mark.usefixtures("in_tmp_path", "private_cache_key")


# --- an experiment whose steps count their executions in a file ---------------------------


def _executed(log: str, what: object = "") -> None:
    with open(log, "a") as handle:
        handle.write(f"{what}\n")


def executions(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@data_source
def constant(ctx):
    return 1.0


@pipeline_step(cacheable=True)
def shift(value, ctx, *, log, delta=0.0):
    _executed(log)
    return value + delta


@pipeline_step(cacheable=True)
def noisy(value, ctx, *, log):
    _executed(log)
    return value + float(ctx.rng.normal())


@pipeline_step(cacheable=True)
def noisy_globally(value, ctx, *, log):
    _executed(log)
    return value + random.random()


@pipeline_step(cacheable=True, deterministic=True)
def doubled(value, ctx, *, log):
    _executed(log)
    return value * 2.0


@pipeline_step(cacheable=True)
def undeclared_doubled(value, ctx, *, log):
    _executed(log)
    return value * 2.0


@pipeline_step(cacheable=True)
def recording(value, ctx, *, log, delta=0.0):
    _executed(log)
    value = value + delta + float(ctx.rng.normal())
    ctx.metrics.add("inner", value * 10.0, {"unit": "dB"})
    ctx.metrics.add("inner", value * 20.0)
    ctx.add("half", value / 2.0)
    ctx.artifacts.add("value.txt", repr(value).encode())
    return value


@pipeline_step()
def reads_half(value, ctx):
    return value, {"score": value, "half": ctx["half"]}


@pipeline_step()
def record(value, ctx):
    return value, {"score": value}


@pipeline_step()
def record_rng(value, ctx):
    return value, {"score": value, "later": float(ctx.rng.normal())}


@pipeline_step()
def record_random(value, ctx):
    return value, {"score": value, "later": random.random()}


def build(
    *steps: Any,
    replicates: int = 3,
    treatments: Iterable[Any] = (),
    plugins: Iterable[Any] = (),
    name: str = "cache_test",
) -> Experiment:
    builder = Experiment.builder(name).datasource(constant()).replicates(replicates)
    for step in steps:
        builder = builder.add_step(step)
    return builder.treatments(list(treatments)).plugins(list(plugins)).build()


def scores(result: Any, condition: str = "baseline", metric: str = "score") -> list[float]:
    metrics = result.metrics.baseline if condition == "baseline" else None
    if metrics is None:
        metrics = result.metrics.treatments[condition]
    return list(metrics.metrics[metric])


def cache_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.entry"))


# --- 1. sound keys: the original's defects as regression tests ----------------------------


def test_a_treatment_injecting_delta_keeps_its_effect_on_a_warm_cache(tmp_path: Path) -> None:
    log = tmp_path / "shift.log"
    exp = build(shift(log=str(log)), record(), treatments=[treatment("up", {"delta": 5.0})])
    cold = exp.run()
    warm = exp.run()
    assert cold.cache_stats["misses"] == 6
    assert warm.cache_stats["hits"] == 6
    assert warm.cache_stats["misses"] == 0
    assert executions(log) == 6
    for result in (cold, warm):
        assert scores(result) == [1.0, 1.0, 1.0]
        assert scores(result, "up") == [6.0, 6.0, 6.0]  # not the baseline's cached 1.0


def test_replicates_of_a_stochastic_step_differ_and_a_warm_run_serves_them_back(
    tmp_path: Path,
) -> None:
    log = tmp_path / "noisy.log"
    exp = build(noisy(log=str(log)), record(), replicates=5)
    cold = scores(exp.run())
    assert len(set(cold)) == 5  # every replicate drew its own numbers
    warm = exp.run()
    assert warm.cache_stats["hits"] == 5
    assert scores(warm) == cold
    assert executions(log) == 5


def test_a_deterministic_step_runs_once_for_identical_inputs_across_replicates_and_conditions(
    tmp_path: Path,
) -> None:
    log = tmp_path / "doubled.log"
    other = treatment("other", {"unused": 1})
    result = build(doubled(log=str(log)), record(), replicates=4, treatments=[other]).run()
    assert executions(log) == 1
    assert result.cache_stats["hits"] == 7
    assert result.cache_stats["misses"] == 1
    assert scores(result) == scores(result, "other") == [2.0] * 4
    # Not declared deterministic: one entry per replicate (shared by the conditions, which
    # draw the same seeds).
    log2 = tmp_path / "undeclared.log"
    build(undeclared_doubled(log=str(log2)), record(), replicates=4, treatments=[other]).run()
    assert executions(log2) == 4


# --- 2. replayed side effects -------------------------------------------------------------


def artifact_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name == "value.txt"
    }


def test_a_hit_replays_metrics_context_writes_and_artifacts(tmp_path: Path) -> None:
    log = tmp_path / "recording.log"
    exp = build(
        recording(log=str(log)),
        reads_half(),
        replicates=3,
        treatments=[treatment("up", {"delta": 5.0})],
        plugins=[ArtifactPlugin(root_dir=tmp_path / "artifacts")],
    )
    cold = exp.run()
    cold_files = artifact_files(tmp_path / "artifacts")
    assert len(cold_files) == 6
    assert executions(log) == 6
    warm = exp.run()  # ArtifactPlugin empties v0 first: the warm run writes the files anew
    assert executions(log) == 6
    assert warm.cache_stats["hits"] == 6
    assert cold.cache_stats["bytes_written"] > 0
    assert warm.cache_stats["bytes_written"] == 0
    assert warm.cache_stats["seconds_saved"] > 0
    for condition in ("baseline", "up"):
        for metric in ("inner", "half", "score"):
            assert scores(warm, condition, metric) == scores(cold, condition, metric)
        assert [len(pair) for pair in scores(warm, condition, "inner")] == [2, 2, 2]
    assert artifact_files(tmp_path / "artifacts") == cold_files
    assert warm.artifacts == cold.artifacts
    assert [r.metrics for r in warm.runs] == [r.metrics for r in cold.runs]


@pytest.mark.parametrize(
    ("step", "later"),
    [(noisy, record_rng), (noisy_globally, record_random)],
    ids=["ctx.rng", "random module"],
)
def test_a_later_step_draws_the_same_random_numbers_on_a_warm_run(
    tmp_path: Path, step: Any, later: Any
) -> None:
    # The cacheable step advances the run's random state; a hit must leave it where a
    # computed step would, or everything downstream differs between warm and cold runs.
    exp = build(step(log=str(tmp_path / "log")), later(), replicates=3)
    cold = exp.run()
    warm = exp.run()
    assert warm.cache_stats["hits"] == 3
    assert scores(warm) == scores(cold)
    assert scores(warm, metric="later") == scores(cold, metric="later")


# --- 3. storage ---------------------------------------------------------------------------


def test_scripts_cache_under_dot_crystallize_in_the_working_directory(tmp_path: Path) -> None:
    build(shift(log=str(tmp_path / "log")), record(), replicates=2).run()
    assert len(cache_files(tmp_path / ".crystallize" / "cache")) == 2


def test_crystallize_cache_dir_moves_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRYSTALLIZE_CACHE_DIR", str(tmp_path / "elsewhere"))
    exp = build(shift(log=str(tmp_path / "log")), record(), replicates=2)
    exp.run()
    assert exp.run().cache_stats["hits"] == 2
    assert len(cache_files(tmp_path / "elsewhere")) == 2
    assert not (tmp_path / ".crystallize").exists()


def test_cache_plugin_root_dir_moves_the_cache_and_enabled_false_turns_it_off(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log"
    exp = build(shift(log=str(log)), record(), replicates=2, plugins=[CachePlugin(root_dir="mine")])
    exp.run()
    assert exp.run().cache_stats["hits"] == 2
    assert len(cache_files(tmp_path / "mine")) == 2
    off = build(shift(log=str(log)), record(), replicates=2, plugins=[CachePlugin(enabled=False)])
    for _ in range(2):
        stats = off.run().cache_stats
        assert stats == {
            "hits": 0,
            "misses": 0,
            "rejected": 0,
            "bytes_written": 0,
            "seconds_saved": 0.0,
        }
    assert executions(log) == 2 + 4
    assert not (tmp_path / ".crystallize").exists()


def test_steps_that_are_not_cacheable_are_never_hashed(tmp_path: Path) -> None:
    # An input that cannot be pickled (a lambda) passes between two plain steps while a
    # later step is cached: only the cacheable step's input is digested.
    @pipeline_step()
    def wrap(value):
        return {"value": value, "fn": lambda x: x + 1}

    @pipeline_step()
    def unwrap(held):
        return held["fn"](held["value"])

    log = tmp_path / "log"
    exp = build(wrap(), unwrap(), shift(log=str(log)), record(), replicates=2)
    assert scores(exp.run()) == [2.0, 2.0]
    assert scores(exp.run()) == [2.0, 2.0]
    assert executions(log) == 2
    assert RunPlan(build(wrap(), unwrap(), record())).cache is None


SIGNED_LIST = pickle.dumps([1, 2, 3])


def _entry(output: Any = 1.5) -> CacheEntry:
    return CacheEntry(output, (("m", 1.0, None),), (("f.txt", b"data"),), (("k", 2),), (), 0.25)


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: b"",
        lambda blob: blob[:5],
        lambda blob: blob[: len(_MAGIC) + 40],
        lambda blob: blob[:-1],
        lambda blob: bytes(reversed(blob)),
        lambda blob: b"garbage" * 100,
        lambda blob: blob[: len(_MAGIC) + 32] + b"\x80\x05garbage",
        lambda blob: _MAGIC + hmac.new(b"k", b"\x80\x05junk", "sha256").digest() + b"\x80\x05junk",
        lambda blob: _MAGIC + hmac.new(b"k", SIGNED_LIST, "sha256").digest() + SIGNED_LIST,
    ],
    ids=[
        "empty",
        "5 bytes",
        "header only",
        "last byte cut",
        "reversed",
        "garbage",
        "bad pickle",
        "signed junk",
        "signed non-entry",
    ],
)
def test_a_truncated_or_corrupt_entry_is_a_miss_that_the_next_store_rewrites(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    cache = StepCache(tmp_path / "c", key=b"k")
    key = "ab" * 32
    cache.store(key, _entry(), CacheStats())
    path = cache.path(key)
    path.write_bytes(damage(path.read_bytes()))
    stats = CacheStats()
    assert cache.load(key, stats) is None
    assert (stats.hits, stats.misses) == (0, 1)
    cache.store(key, _entry(), stats)
    assert cache.load(key, stats) == _entry()
    assert path.read_bytes().startswith(_MAGIC)


def test_a_damaged_entry_in_a_run_is_recomputed_and_rewritten(tmp_path: Path) -> None:
    log = tmp_path / "log"
    exp = build(noisy(log=str(log)), record(), replicates=3)
    cold = exp.run()
    truncated, garbage, intact = cache_files(tmp_path / ".crystallize" / "cache")
    truncated.write_bytes(truncated.read_bytes()[:-7])
    garbage.write_bytes(os.urandom(300))
    repaired = exp.run()
    assert (repaired.cache_stats["hits"], repaired.cache_stats["misses"]) == (1, 2)
    assert executions(log) == 5
    assert scores(repaired) == scores(cold)
    for path in (truncated, garbage, intact):
        loaded = StepCache(path.parent.parent).load(path.stem, CacheStats())
        assert isinstance(loaded, CacheEntry)
    assert exp.run().cache_stats["hits"] == 3
    assert executions(log) == 5


HAMMER_KEYS = [f"{i:x}" * 64 for i in range(3)]
HAMMER_SIZE = 256 * 1024
HAMMER_ROUNDS = 15


def _hammer_entry(key_index: int, writer: int) -> CacheEntry:
    blob = bytes([writer]) * HAMMER_SIZE
    return CacheEntry((key_index, writer, blob), (), (("blob.bin", blob),), (), (), 0.0)


def _hammer(root: str, writer: int, barrier: Any, results: Any) -> None:
    """Store and load the same keys as the other processes; report what went wrong."""
    try:
        barrier.wait(timeout=30)  # all eight start together
        cache = StepCache(Path(root), key=b"one key for all processes")
        stats = CacheStats()
        problems: list[str] = []
        stored: set[int] = set()
        loads = 0
        for _ in range(HAMMER_ROUNDS):
            for index, key in enumerate(HAMMER_KEYS):
                for phase in ("before", "after"):
                    if phase == "after":
                        cache.store(key, _hammer_entry(index, writer), stats)
                        stored.add(index)
                    entry = cache.load(key, stats)
                    loads += 1
                    if entry is None:
                        if index in stored:  # once stored, an entry is never missing
                            problems.append(f"key {index}: a miss after storing it")
                        continue
                    key_index, who, blob = entry.output
                    expected = bytes([who]) * HAMMER_SIZE
                    if key_index != index or blob != expected or entry.artifacts[0][1] != blob:
                        problems.append(f"key {index}: a torn entry")
        if stats.rejected:
            problems.append(f"{stats.rejected} entries failed their signature (torn)")
        results.put((writer, loads, problems[:5]))
    except BaseException:
        results.put((writer, 0, [traceback.format_exc()]))


def test_eight_processes_storing_and_loading_the_same_keys_never_see_a_torn_entry(
    tmp_path: Path,
) -> None:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier, results = context.Barrier(8), context.Queue()
    shared = str(tmp_path / "shared")
    processes = [
        context.Process(target=_hammer, args=(shared, writer, barrier, results))
        for writer in range(8)
    ]
    for process in processes:
        process.start()
    reports = []
    try:
        for _ in processes:
            reports.append(results.get(timeout=60))
    except queue.Empty:
        pytest.fail(f"only {len(reports)} of 8 processes reported")
    finally:
        for process in processes:
            process.join(timeout=30)
    assert [p.exitcode for p in processes] == [0] * 8
    assert sorted(writer for writer, _, _ in reports) == list(range(8))
    assert all(loads == HAMMER_ROUNDS * len(HAMMER_KEYS) * 2 for _, loads, _ in reports)
    assert [problems for _, _, problems in reports] == [[]] * 8
    assert len(cache_files(tmp_path / "shared")) == len(HAMMER_KEYS)
    assert not list((tmp_path / "shared").rglob("*.tmp"))  # no temporary file left behind


def test_eviction_deletes_least_recently_used_entries_and_a_hit_counts_as_a_use(
    tmp_path: Path,
) -> None:
    cache = StepCache(tmp_path / "c", key=b"k")
    keys = [f"{i:02x}" * 32 for i in range(6)]
    for age, key in enumerate(keys):
        cache.store(key, _entry(b"x" * 10_000), CacheStats())
        os.utime(cache.path(key), (1_000_000 + age, 1_000_000 + age))
    size = cache.path(keys[0]).stat().st_size
    assert cache.load(keys[0], CacheStats()) is not None  # the oldest, used just now
    removed = cache.evict(3 * size)
    assert removed == 3
    kept = {path.stem for path in cache_files(tmp_path / "c")}
    assert kept == {keys[0], keys[4], keys[5]}
    assert cache.evict(10 * size) == 0


def test_cache_plugin_max_mb_caps_the_cache_after_each_run(tmp_path: Path) -> None:
    @pipeline_step(cacheable=True)
    def big(value, ctx):
        return value + float(ctx.rng.normal()), b"y" * 100_000

    @pipeline_step()
    def unpack(pair):
        return pair[0], {"score": pair[0]}

    exp = build(big(), unpack(), replicates=8, plugins=[CachePlugin(max_mb=0.3)])
    exp.run()
    files = cache_files(tmp_path / ".crystallize" / "cache")
    assert 0 < len(files) <= 3
    assert sum(path.stat().st_size for path in files) <= 0.3 * 1024 * 1024


@pytest.mark.parametrize("value", ["lots", 0, -1])
def test_a_bad_max_mb_is_a_clear_error(value: Any) -> None:
    with pytest.raises(
        CrystallizeUsageError, match="must be a positive number of megabytes"
    ) as info:
        CachePlugin(max_mb=value)
    assert repr(value) in str(info.value)


# --- 4. signed entries --------------------------------------------------------------------


def test_the_signing_key_file_is_private_and_outside_the_cache(tmp_path: Path) -> None:
    build(shift(log=str(tmp_path / "log")), record(), replicates=1).run()
    key_file = tmp_path / "xdg" / "pytest-crystallize" / "cache-signing-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) & 0o077 == 0
    assert len(key_file.read_bytes()) >= 32
    assert signing_key() == key_file.read_bytes()  # created once, then reused
    cache_dir = (tmp_path / ".crystallize" / "cache").resolve()
    assert cache_dir not in key_file.resolve().parents
    assert all(path.suffix == ".entry" for path in cache_dir.rglob("*") if path.is_file())


def test_an_entry_signed_under_another_key_is_rejected_and_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "log"
    exp = build(noisy(log=str(log)), record(), replicates=1)
    monkeypatch.setenv("CRYSTALLIZE_CACHE_KEY", "alpha-0123456789abcdef")
    first = exp.run()
    assert not (tmp_path / "xdg").exists()  # no key file when the key is configured
    assert exp.run().cache_stats["hits"] == 1
    monkeypatch.setenv("CRYSTALLIZE_CACHE_KEY", "beta-0123456789abcdef")
    other = exp.run()
    assert other.cache_stats["rejected"] == 1
    assert other.cache_stats["misses"] == 1
    assert other.cache_stats["hits"] == 0
    assert executions(log) == 2
    assert scores(other) == scores(first)
    assert exp.run().cache_stats["hits"] == 1  # rewritten under the "beta" key


KEY_TRIALS = 20


def _read_key(configs: list[str], barrier: Any, results: Any) -> None:
    try:
        keys = []
        for config in configs:
            os.environ["XDG_CONFIG_HOME"] = config
            barrier.wait(timeout=30)
            keys.append(signing_key())
        results.put(keys)
    except BaseException:
        results.put([traceback.format_exc()])


def test_processes_creating_the_key_file_at_once_all_get_the_full_key(tmp_path: Path) -> None:
    # Eight processes start at once without a key file (xdist workers on a fresh machine):
    # they must all sign with the one key that ends up in the file, never with a partly
    # written (empty) one, or the entries of some are rejected by the others later.
    configs = [str(tmp_path / f"config-{trial}") for trial in range(KEY_TRIALS)]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier = context.Barrier(8)
    results = context.Queue()
    processes = [
        context.Process(target=_read_key, args=(configs, barrier, results)) for _ in range(8)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
    for trial, config in enumerate(configs):
        stored = (Path(config) / "pytest-crystallize" / "cache-signing-key").read_bytes()
        assert len(stored) >= 32
        assert [keys[trial] for keys in reports] == [stored] * 8, f"trial {trial}"


def test_an_empty_key_file_is_never_used_as_the_key(tmp_path: Path) -> None:
    # What a process sees while another one has created the file but not written it yet.
    key_file = tmp_path / "xdg" / "pytest-crystallize" / "cache-signing-key"
    key_file.parent.mkdir(parents=True, mode=0o700)
    key_file.touch(mode=0o600)
    key = signing_key()
    assert len(key) >= 32
    assert signing_key() == key


class _CreatesAFile:
    """Unpickling this object calls ``open(path, "w")``: a stand-in for arbitrary code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> Any:
        return (io.open, (self.path, "w"))


def test_a_tampered_entry_is_never_unpickled(tmp_path: Path) -> None:
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_CreatesAFile(proof))).close()
    assert proof.exists()  # unpickling this payload does create the file

    log = tmp_path / "log"
    exp = build(noisy(log=str(log)), record(), replicates=1)
    cold = exp.run()
    (entry,) = cache_files(tmp_path / ".crystallize" / "cache")
    target = tmp_path / "pwned"
    entry.write_bytes(_MAGIC + b"\x00" * 32 + pickle.dumps(_CreatesAFile(target)))
    tampered = exp.run()
    assert not target.exists()
    assert tampered.cache_stats["rejected"] == 1
    assert tampered.cache_stats["hits"] == 0
    assert scores(tampered) == scores(cold)
    assert executions(log) == 2
    stats = CacheStats()
    assert isinstance(StepCache(entry.parent.parent).load(entry.stem, stats), CacheEntry)


def test_a_signed_entry_moved_to_another_key_is_not_served_for_it(tmp_path: Path) -> None:
    # Each file is signed, but an entry must also be bound to its key: swapping two genuine
    # entries (a tampered cache) must not serve one run's output to another.
    log = tmp_path / "log"
    exp = build(noisy(log=str(log)), record(), replicates=2)
    cold = exp.run()
    first, second = cache_files(tmp_path / ".crystallize" / "cache")
    blob_first, blob_second = first.read_bytes(), second.read_bytes()
    first.write_bytes(blob_second)
    second.write_bytes(blob_first)
    swapped = exp.run()
    assert scores(swapped) == scores(cold)
    assert swapped.cache_stats["hits"] == 0
    assert executions(log) == 4


def test_load_rejects_a_bad_signature_before_unpickling(tmp_path: Path) -> None:
    cache = StepCache(tmp_path / "c", key=b"ours")
    key = "cd" * 32
    target = tmp_path / "pwned"
    payload = pickle.dumps(_CreatesAFile(target))
    cache.path(key).parent.mkdir(parents=True)
    for signature in (b"\x00" * 32, b"\xff" * 32):
        cache.path(key).write_bytes(_MAGIC + signature + payload)
        stats = CacheStats()
        assert cache.load(key, stats) is None
        assert (stats.hits, stats.misses, stats.rejected) == (0, 1, 1)
    # Signed with another key: rejected as well.
    StepCache(tmp_path / "c", key=b"theirs").store(key, _entry(), CacheStats())
    stats = CacheStats()
    assert cache.load(key, stats) is None
    assert stats.rejected == 1
    assert not target.exists()


# --- keys: changing any component misses, changing nothing hits --------------------------

params_st = st.dictionaries(
    st.text(max_size=5),
    st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.booleans()),
    max_size=4,
)
arrays_st = st.builds(
    lambda values, dtype, shape: np.resize(np.asarray(values, dtype=dtype), shape),
    st.lists(st.integers(0, 100), min_size=1, max_size=12),
    st.sampled_from(["int32", "int64", "float32", "float64", "uint8"]),
    st.sampled_from([(12,), (3, 4), (4, 3), (2, 2, 3), (6,)]),
)
data_st = st.one_of(
    st.floats(allow_nan=False), st.text(max_size=10), arrays_st, st.lists(st.integers())
)
seed_st = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 99), st.integers(0, 2**32 - 1)),
)
code_st = st.binary(min_size=32, max_size=32)


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types (arrays: dtype, shape and bytes)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return bool(a == b)


@PROPERTIES
@given(
    params=params_st,
    data=data_st,
    seed=seed_st,
    code=code_st,
    which=st.sampled_from(["params", "data", "seed", "code"]),
    choice=st.data(),
)
def test_changing_any_key_component_misses_and_changing_nothing_hits(
    tmp_path_factory: pytest.TempPathFactory,
    params: dict[str, Any],
    data: Any,
    seed: Any,
    code: bytes,
    which: str,
    choice: st.DataObject,
) -> None:
    root = tmp_path_factory.getbasetemp() / "keys"
    cache = StepCache(root, key=b"k")
    parts = {"params": params, "data": data, "seed": seed, "code": code}
    key = cache.step_key(**parts)
    cache.store(key, _entry(output=repr(parts)), CacheStats())
    # Nothing changed (copies, dict in another insertion order): a hit on the same entry.
    same = {
        "params": dict(reversed(list(params.items()))),
        "data": data.copy() if isinstance(data, np.ndarray | list) else data,
        "seed": None if seed is None else tuple(seed),
        "code": bytes(bytearray(code)),
    }
    assert StepCache(root, key=b"k").step_key(**same) == key
    hit = cache.load(StepCache(root, key=b"k").step_key(**same), CacheStats())
    assert hit is not None
    assert hit.output == repr(parts)
    # One component changed: another key.
    strategies = {"params": params_st, "data": data_st, "seed": seed_st, "code": code_st}
    changed = choice.draw(strategies[which].filter(lambda v: not _same(v, parts[which])))
    other = cache.step_key(**{**parts, which: changed})
    assert other != key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (np.arange(6, dtype=np.int32), np.arange(6, dtype=np.int64)),
        (np.arange(6.0), np.arange(6.0).reshape(2, 3)),
        (np.arange(6.0), np.arange(6.0) + 1e-12),
        (np.zeros(3), np.zeros(4)),
        ({"delta": 0}, {"delta": 0.0}),
        ({"delta": 1}, {"delta": True}),
        ([1, 2], (1, 2)),
        ((7, 0, 1), (7, 1, 0)),
    ],
    ids=["dtype", "shape", "values", "length", "int-float", "int-bool", "list-tuple", "seed"],
)
def test_inputs_that_differ_only_in_type_or_layout_get_different_keys(a: Any, b: Any) -> None:
    cache = StepCache(Path("unused"), key=b"k")
    code = b"c" * 32
    assert cache.step_key(code, {}, a, None) != cache.step_key(code, {}, b, None)
    assert cache.step_key(code, a, 0, None) != cache.step_key(code, b, 0, None)


def test_a_fortran_ordered_or_strided_array_has_the_key_of_its_contiguous_copy() -> None:
    cache = StepCache(Path("unused"), key=b"k")
    array = np.arange(24.0).reshape(4, 6)
    views = [np.asfortranarray(array), array.T.copy().T, array[:, ::1]]
    keys = {cache.step_key(b"c", {}, view, None) for view in views}
    assert keys == {cache.step_key(b"c", {}, array, None)}
    strided = array[:, ::2]
    assert cache.step_key(b"c", {}, strided, None) == cache.step_key(
        b"c", {}, np.ascontiguousarray(strided), None
    )


def test_dicts_and_sets_in_another_insertion_order_get_the_same_key() -> None:
    cache = StepCache(Path("unused"), key=b"k")
    forward = {"alpha": 1, "beta": [1, 2], "gamma": {"x", "y", "z"}}
    backward = {"gamma": {"z", "y", "x"}, "beta": [1, 2], "alpha": 1}
    assert cache.step_key(b"c", forward, backward, (1, 2, 3)) == cache.step_key(
        b"c", backward, forward, (1, 2, 3)
    )


def test_code_changes_reach_the_key_through_the_step(tmp_path: Path) -> None:
    """A run plan fingerprints each step: editing the step body gives new entries."""
    module = tmp_path / "edited_step.py"
    source = (
        "from pytest_crystallize import pipeline_step\n\n"
        "@pipeline_step(cacheable=True)\n"
        "def edited(value, ctx):\n"
        "    return value + 1.0\n"
    )

    def load(text: str) -> Any:
        module.write_text(text)
        spec = importlib.util.spec_from_file_location("edited_step", module)
        assert spec is not None
        assert spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules["edited_step"] = loaded
        spec.loader.exec_module(loaded)
        return loaded.edited

    try:
        first = build(load(source)(), record(), replicates=2).run()
        again = build(load(source)(), record(), replicates=2).run()
        edited = build(load(source.replace("+ 1.0", "+ 2.0"))(), record(), replicates=2).run()
    finally:
        sys.modules.pop("edited_step", None)
    assert again.cache_stats["hits"] == 2
    assert edited.cache_stats["hits"] == 0
    assert scores(first) == [2.0, 2.0]
    assert scores(edited) == [3.0, 3.0]


def test_large_inputs_get_keys_from_the_keyed_buffer_hash_that_see_every_word(
    tmp_path: Path,
) -> None:
    """Inputs of 1 MB and more are digested by the keyed multilinear hash (near memory
    bandwidth): one changed word, in any block or in the tail, changes the key; equal
    contents give equal keys; another signing key gives other keys."""
    cache = StepCache(tmp_path / "a", key=b"k" * 32)
    other = StepCache(tmp_path / "b", key=b"j" * 32)
    base = np.random.default_rng(7).normal(size=300_001)  # 2.4 MB: blocks and a tail
    key = cache.step_key(b"code", {}, base, None)
    assert cache.step_key(b"code", {}, base.copy(), None) == key
    assert other.step_key(b"code", {}, base, None) != key
    for index in (0, 4095, 4096, 150_000, 300_000):
        changed = base.copy()
        changed[index] = np.nextafter(changed[index], np.inf)
        assert cache.step_key(b"code", {}, changed, None) != key, index
    swapped = base.copy()
    swapped[:4096], swapped[4096:8192] = base[4096:8192], base[:4096]
    assert cache.step_key(b"code", {}, swapped, None) != key
