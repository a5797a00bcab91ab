"""The step cache under pytest: where it lives, its options, replay on xdist, interruption."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from _support import (
    NO_XDIST,
    SIGNIFICANT,
    TWO_WORKERS,
    WELCH,
    builder_source,
    chunks,
    in_every_mode,
    read_lines,
    section,
    treatments_source,
    verdict_lines,
)

# The experiment of most tests here: the data source carries its condition and replicate, so
# the cacheable step can log which run executed it (one line per execution) without reading
# the context; the step records a metric, adds a context value a later step reads, and adds
# an artifact, so a hit has all three to replay.
EXPERIMENT = """\
from __future__ import annotations

import json
import os
from pathlib import Path

from pytest_crystallize import (
    ArtifactPlugin,
    Experiment,
    data_source,
    hypothesis,
    pipeline_step,
    treatment,
    verifier,
)

LOG = Path(__LOG__)
PAYLOAD = __PAYLOAD__


@data_source
def draw(ctx):
    return {"condition": ctx["condition"], "replicate": ctx["replicate"],
            "x": float(ctx.rng.normal())}


@pipeline_step(cacheable=True)
def work(data, ctx, *, delta=0.0):
    with LOG.open("a") as handle:
        handle.write(f"{data['condition']} {data['replicate']}\\n")
__EXTRA__
    value = data["x"] + delta + float(ctx.rng.normal(0.0, 0.1))
    ctx.metrics.add("inner", value * 2.0)
    ctx.add("half", value / 2.0)
    ctx.artifacts.add("value.json", json.dumps(value).encode())
    return value, b"x" * PAYLOAD


@pipeline_step()
def score(data, ctx):
    value, blob = data
    return value, {"score": value, "half": ctx["half"], "size": float(len(blob))}


__WELCH__


@hypothesis(verifier=welch(), metrics="score")
def shifted(result):
    return result["p_value"]
"""
CACHED = builder_source(
    "cached",
    source="draw()",
    steps=["work()", "score()"],
    treatments=treatments_source({"boost": 3.0}),
    hypotheses="shifted",
    calls=['.plugins([ArtifactPlugin(root_dir="artifacts")])'],
    replicates="__REPLICATES__",
)

CACHE_LINE = re.compile(r"step cache: (\d+) hits, (\d+) misses")


pytestmark = pytest.mark.usefixtures("private_cache_key")


def write_experiment(
    tester: pytest.Pytester, *, replicates: int = 8, payload: int = 16, extra: str = ""
) -> Path:
    """Write ``experiment_cached.py``; return the file its step logs executions to."""
    log = tester.path / "executions.log"
    source = (
        (EXPERIMENT + CACHED)
        .replace("__WELCH__", WELCH.format(returns=SIGNIFICANT).strip())
        .replace("__LOG__", repr(str(log)))
        .replace("__PAYLOAD__", str(payload))
        .replace("__REPLICATES__", str(replicates))
        .replace("__EXTRA__", extra)
    )
    tester.makepyfile(experiment_cached=source)
    return log


def cache_counts(stdout: str) -> tuple[int, int] | None:
    """``(hits, misses)`` from the terminal summary, ``None`` without a step cache line."""
    found = CACHE_LINE.search(stdout)
    return None if found is None else (int(found[1]), int(found[2]))


def verdict_rows(stdout: str) -> list[str]:
    """The ``crystallize`` section without its step cache line, and the verdict lines."""
    rows = [line for line in section(stdout) if not line.startswith("step cache:")]
    return rows + verdict_lines(stdout)


def artifact_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".crystallize")  # the plugin's own marks
    }


def entries(tester: pytest.Pytester) -> list[Path]:
    return sorted((tester.path / ".pytest_cache" / "d" / "crystallize-steps").glob("*/*.entry"))


def passed(dist: list[str], conditions: int = 2, replicates: int = 4) -> int:
    """The passed reports of a session: its chunk items and one verdict."""
    # One chunk per condition in a single process; with 2 workers, 4 chunks per condition.
    return conditions * chunks(dist, min(replicates, 4)) + 1


@in_every_mode
def test_a_warm_cache_replays_metrics_context_writes_and_artifacts_exactly(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    log = write_experiment(ourtester)
    args = ["--crystallize", "-rA", "-v", *dist]
    cold = ourtester.runpytest(*args)
    cold.assert_outcomes(passed=passed(dist, replicates=8))
    assert cache_counts(cold.stdout.str()) == (0, 16)
    assert len(read_lines(log)) == 16
    assert "PASSED (cached)" not in cold.stdout.str()
    # Under pytest the entries live in .pytest_cache, nowhere else.
    assert len(entries(ourtester)) == 16
    assert all(len(path.parent.name) == 2 for path in entries(ourtester))
    assert not (ourtester.path / ".crystallize").exists()
    cold_files = artifact_files(ourtester.path / "artifacts")
    assert len(cold_files) == 16

    shutil.rmtree(ourtester.path / "artifacts")
    warm = ourtester.runpytest(*args)
    warm.assert_outcomes(passed=passed(dist, replicates=8))
    out = warm.stdout.str()
    assert len(read_lines(log)) == 16  # not one execution more
    assert cache_counts(out) == (16, 0)
    warm.stdout.fnmatch_lines(["step cache: 16 hits, 0 misses, 0.0 MB written, * s saved"])
    # Each chunk item is marked, in the progress lines and in the -rA summary.
    assert out.count("PASSED (cached)") == 2 * (passed(dist, replicates=8) - 1)
    assert verdict_rows(out)[-1].startswith("PASSED p=")  # the verdict is not "cached"
    assert verdict_rows(out) == verdict_rows(cold.stdout.str())
    assert artifact_files(ourtester.path / "artifacts") == cold_files

    if dist == TWO_WORKERS:  # keys do not depend on the process: workers' entries hit here too
        single = ourtester.runpytest("--crystallize", "-rA", *NO_XDIST)
        assert cache_counts(single.stdout.str()) == (16, 0)
        assert verdict_rows(single.stdout.str()) == verdict_rows(cold.stdout.str())
        assert len(read_lines(log)) == 16


@pytest.fixture
def warm_log(ourtester: pytest.Pytester) -> Path:
    """A 4-replicate experiment run once, so its 8 runs are cached; its execution log."""
    log = write_experiment(ourtester, replicates=4)
    first = ourtester.runpytest("--crystallize", *NO_XDIST)
    first.assert_outcomes(passed=3)
    assert cache_counts(first.stdout.str()) == (0, 8)
    assert len(entries(ourtester)) == 8
    return log


@in_every_mode
def test_no_cache_runs_the_step_every_time_and_leaves_the_cache_alone(
    ourtester: pytest.Pytester, warm_log: Path, dist: list[str]
) -> None:
    before = {path: path.read_bytes() for path in entries(ourtester)}
    result = ourtester.runpytest("--crystallize", "--crystallize-no-cache", *dist)
    result.assert_outcomes(passed=passed(dist))
    assert len(read_lines(warm_log)) == 16  # the warm cache was not read
    assert cache_counts(result.stdout.str()) is None
    assert {path: path.read_bytes() for path in entries(ourtester)} == before  # nor written


@in_every_mode
def test_cache_clear_empties_the_cache_once_before_the_run(
    ourtester: pytest.Pytester, warm_log: Path, dist: list[str]
) -> None:
    stray = entries(ourtester)[0].parent / ("f" * 64 + ".entry")
    stray.write_bytes(b"an entry of another experiment")
    cleared = ourtester.runpytest("--crystallize", "--crystallize-cache-clear", *dist)
    cleared.assert_outcomes(passed=passed(dist))
    assert cache_counts(cleared.stdout.str()) == (0, 8)
    assert len(read_lines(warm_log)) == 16
    assert not stray.exists()
    # Cleared once, before the runs (by the controller, not by each worker): every entry
    # this session wrote is still there.
    assert len(entries(ourtester)) == 8
    again = ourtester.runpytest("--crystallize", *NO_XDIST)
    assert cache_counts(again.stdout.str()) == (8, 0)


@in_every_mode
def test_without_the_cacheprovider_steps_run_uncached_without_error(
    ourtester: pytest.Pytester, warm_log: Path, dist: list[str]
) -> None:
    before = {path: path.stat().st_mtime_ns for path in entries(ourtester)}
    result = ourtester.runpytest("--crystallize", "-p", "no:cacheprovider", *dist)
    result.assert_outcomes(passed=passed(dist))
    assert result.ret == pytest.ExitCode.OK
    assert cache_counts(result.stdout.str()) is None
    assert len(read_lines(warm_log)) == 16  # no entry was read
    assert {path: path.stat().st_mtime_ns for path in entries(ourtester)} == before
    assert not (ourtester.path / ".crystallize").exists()


def test_cache_max_mb_evicts_least_recently_used_entries_and_keeps_a_recent_hit(
    ourtester: pytest.Pytester, write_ini: object
) -> None:
    # Each entry holds a 100 kB output; the cap holds four of them.
    log = write_experiment(ourtester, replicates=6, payload=100_000)
    ourtester.runpytest("--crystallize", *NO_XDIST, "--crystallize-replicates", "1")
    recent = set(entries(ourtester))
    assert len(recent) == 2  # replicate 0 of the baseline and of the treatment
    ourtester.runpytest("--crystallize", *NO_XDIST)
    everything = entries(ourtester)
    assert len(everything) == 12
    # Make replicate 0's entries the oldest, then hit them: they must survive the eviction.
    for age, path in enumerate(sorted(everything, key=lambda p: p not in recent)):
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    write_ini("crystallize_cache_max_mb = 0.4")  # type: ignore[operator]
    result = ourtester.runpytest("--crystallize", *NO_XDIST, "--crystallize-replicates", "1")
    assert cache_counts(result.stdout.str()) == (2, 0)
    kept = entries(ourtester)
    assert recent <= set(kept)
    assert sum(path.stat().st_size for path in kept) <= 0.4 * 1024 * 1024
    assert len(kept) == 4  # the two hits and the two most recently used of the others
    assert len(read_lines(log)) == 12


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_a_bad_cache_max_mb_is_a_clear_error(
    ourtester: pytest.Pytester, write_ini: object, value: str
) -> None:
    write_experiment(ourtester, replicates=2)
    write_ini(f"crystallize_cache_max_mb = {value}")  # type: ignore[operator]
    result = ourtester.runpytest("--crystallize", *NO_XDIST)
    # A usage error (exit code 4, one "ERROR:" line), not an INTERNALERROR traceback.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: ini crystallize_cache_max_mb must be a positive number of megabytes, "
            f"got {value!r}*"
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_session_killed_half_way_reruns_only_the_runs_that_had_not_finished(
    ourtester: pytest.Pytester,
) -> None:
    # 4 replicates, one chunk per condition (-p no:xdist): the baseline's 4 runs, then the
    # treatment's. The 5th execution (boost, replicate 0) kills the session, once.
    marker = repr(str(ourtester.path / "killed-once"))
    log = write_experiment(
        ourtester,
        replicates=4,
        extra=(
            f"    if len(LOG.read_text().splitlines()) == 5 and not Path({marker}).exists():\n"
            f"        Path({marker}).touch()\n"
            "        os._exit(9)\n"
        ),
    )
    killed = ourtester.runpytest_subprocess("--crystallize", *NO_XDIST)
    assert killed.ret == 9
    assert (ourtester.path / "killed-once").exists()
    assert read_lines(log) == [
        "baseline 0",
        "baseline 1",
        "baseline 2",
        "baseline 3",
        "boost 0",
    ]
    rerun = ourtester.runpytest_subprocess("--crystallize", *NO_XDIST)
    rerun.assert_outcomes(passed=3)
    assert cache_counts(rerun.stdout.str()) == (4, 4)
    assert read_lines(log)[5:] == ["boost 0", "boost 1", "boost 2", "boost 3"]
