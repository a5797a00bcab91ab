"""The step cache: cold, warm and uncached runs against the bare step (issue 4, item 6).

What it measures
----------------
One experiment: 50 replicates (``--replicates``), a data source returning an 8 MB float64
numpy array per replicate (``np.full(1_000_000, float(replicate))``, cheap to make), a
cacheable step that takes 20 ms of CPU (a cheap reduction of the array to a few statistics
and a 1,000-bin histogram of a subsample, then a busy loop on ``time.process_time`` up to
20 ms), and a step that records a metric. In one invocation it times, in milliseconds per
replicate (wall time of ``experiment.run()`` divided by the replicates):

* ``cold``: the first run on an empty cache directory (every step call is a miss and is stored);
* ``warm``: the same experiment again on that directory (every step call is a hit);
* ``uncached``: the experiment with ``CachePlugin(enabled=False)``;
* ``bare``: the data source, the step and the metric step called directly, without the
  framework, for the same replicates (and the step alone, for reference).

Each figure is the best of ``--repeats`` (default 5) measurements, each cold run on a fresh
cache directory. It checks that the cold run missed and the warm run hit every call and gave
the same metrics. The targets are printed beside the figures: warm <= 10 ms per replicate,
warm/cold <= 0.10, uncached within 5% of bare. When warm is above 10 ms (or with
``--profile``) a warm run is profiled and its top functions are printed. The exit status
never depends on the targets.

The cache and the signing key live in a temporary directory (``XDG_CONFIG_HOME`` points
there too), which is removed at the end; nothing is written to the working directory.

How to run
----------
From the project root::

    python3 benchmarks/cache.py
    python3 benchmarks/cache.py --repeats 5 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ARRAY_LENGTH = 1_000_000  # float64: 8 MB
STEP_CPU_SECONDS = 0.020
TARGET_WARM_MS = 10.0
TARGET_WARM_COLD = 0.10
TARGET_UNCACHED_PERCENT = 5.0


def burn_until(deadline: float) -> None:
    """Busy-wait until the process has used ``deadline`` seconds of CPU."""
    while time.process_time() < deadline:
        pass


def build_workload(np: Any) -> dict[str, Any]:
    """The data source, the steps and their bare functions."""
    from pytest_crystallize import data_source, pipeline_step

    def make_signal(replicate: int) -> Any:
        return np.full(ARRAY_LENGTH, float(replicate))

    def summarize_fn(data: Any) -> dict[str, Any]:
        deadline = time.process_time() + STEP_CPU_SECONDS
        counts, _ = np.histogram(data[::100], bins=1000, range=(0.0, 100.0))
        summary = {
            "mean": float(data.mean()),
            "min": float(data.min()),
            "max": float(data.max()),
            "histogram": counts,
        }
        burn_until(deadline)
        return summary

    def metric_fn(summary: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        return summary, {"mean": summary["mean"], "top": float(summary["histogram"].argmax())}

    @data_source
    def signal(ctx: Any) -> Any:
        return make_signal(ctx["replicate"])

    @pipeline_step(cacheable=True)
    def summarize(data: Any) -> dict[str, Any]:
        return summarize_fn(data)

    @pipeline_step()
    def record(summary: dict[str, Any]) -> Any:
        return metric_fn(summary)

    return {
        "signal": signal,
        "summarize": summarize,
        "record": record,
        "make_signal": make_signal,
        "summarize_fn": summarize_fn,
        "metric_fn": metric_fn,
    }


def build_experiment(workload: dict[str, Any], replicates: int, plugins: list[Any]) -> Any:
    from pytest_crystallize import Experiment

    return (
        Experiment.builder("cache_benchmark")
        .datasource(workload["signal"]())
        .add_step(workload["summarize"]())
        .add_step(workload["record"]())
        .plugins(plugins)
        .replicates(replicates)
        .build()
    )


class Clock:
    """Wall time and this process's CPU time since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def timed(fn: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    clock = Clock()
    value = fn()
    return clock.read(), value


def bare(workload: dict[str, Any], replicates: int, *, step_only: bool) -> tuple[float, float]:
    """Wall and CPU seconds to do the pipeline's work (or the step's) without the framework."""
    make, summarize, metric = (
        workload["make_signal"],
        workload["summarize_fn"],
        workload["metric_fn"],
    )
    if step_only:
        arrays = [make(r) for r in range(replicates)]
        clock = Clock()
        for data in arrays:
            summarize(data)
        return clock.read()
    clock = Clock()
    for replicate in range(replicates):
        metric(summarize(make(replicate)))
    return clock.read()


def profile_warm(experiment: Any) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    experiment.run()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(18)
    stats.sort_stats("tottime").print_stats(8)
    return out.getvalue()


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--replicates", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5, help="best of N (default 5)")
    parser.add_argument("--profile", action="store_true", help="always profile a warm run")
    args = parser.parse_args(argv)
    replicates, repeats = args.replicates, max(1, args.repeats)

    with tempfile.TemporaryDirectory(prefix="crystallize-cache-bench-") as tmp:
        root = Path(tmp)
        os.environ["XDG_CONFIG_HOME"] = str(root / "config")
        os.environ.pop("CRYSTALLIZE_CACHE_KEY", None)
        os.environ.pop("CRYSTALLIZE_CACHE_DIR", None)
        os.chdir(root)  # default plugins write under the working directory
        sys.path.insert(0, str(PROJECT_ROOT))

        import numpy as np

        from pytest_crystallize import ArtifactPlugin
        from pytest_crystallize._engine.cache import CachePlugin, StepCache

        workload = build_workload(np)
        artifacts = ArtifactPlugin(root_dir=root / "artifacts")

        def experiment(**cache: Any) -> Any:
            return build_experiment(workload, replicates, [CachePlugin(**cache), artifacts])

        # Warm-up: imports, first-call caches, the signing key file.
        build_experiment(workload, 2, [CachePlugin(root_dir=root / "warmup"), artifacts]).run()
        bare(workload, 2, step_only=False)

        figures: dict[str, list[tuple[float, float]]] = {
            k: [] for k in ("cold", "warm", "uncached", "bare", "step")
        }
        problems: list[str] = []
        written = 0.0
        for repeat in range(repeats):
            cached = experiment(root_dir=root / f"cache-{repeat}")
            spent, cold = timed(cached.run)
            figures["cold"].append(spent)
            spent, warm = timed(cached.run)
            figures["warm"].append(spent)
            spent, uncached = timed(experiment(enabled=False).run)
            figures["uncached"].append(spent)
            figures["bare"].append(bare(workload, replicates, step_only=False))
            figures["step"].append(bare(workload, replicates, step_only=True))
            written = cold.cache_stats["bytes_written"]
            if cold.cache_stats["misses"] != replicates or cold.cache_stats["hits"]:
                problems.append(f"cold run: {cold.cache_stats}")
            if warm.cache_stats["hits"] != replicates or warm.cache_stats["misses"]:
                problems.append(f"warm run: {warm.cache_stats}")
            if any(uncached.cache_stats.values()):
                problems.append(f"uncached run touched the cache: {uncached.cache_stats}")
            for result, label in ((warm, "warm"), (uncached, "uncached")):
                if result.metrics.baseline.metrics != cold.metrics.baseline.metrics:
                    problems.append(f"{label} metrics differ from the cold run's")

        # Best of the repeats, wall and CPU time separately, in ms per replicate.
        ms = {k: min(wall for wall, _ in v) / replicates * 1000 for k, v in figures.items()}
        cpu = {k: min(used for _, used in v) / replicates * 1000 for k, v in figures.items()}
        array = np.full(ARRAY_LENGTH, 1.0)
        keys = StepCache(root / "keys")  # the cache key of a step call with this input
        digest_ms = (
            min(timed(lambda: keys.step_key(b"", {}, array, None))[0][0] for _ in range(10)) * 1000
        )

        print(
            f"step cache benchmark: {replicates} replicates, an {array.nbytes / 1e6:.0f} MB "
            f"float64 array per replicate, a cacheable step of {STEP_CPU_SECONDS * 1000:.0f} ms CPU"
        )
        print(
            f"best of {repeats}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
        )
        print()
        print(f"{'ms per replicate':40}{'wall':>8}{'CPU':>8}")

        def row(label: str, key: str, note: str = "") -> None:
            print(f"{label:40}{ms[key]:8.2f}{cpu[key]:8.2f}   {note}".rstrip())

        row("bare (source + step + metric)", "bare")
        row("bare step only", "step")
        row(
            "cold (empty cache)",
            "cold",
            f"{replicates} misses, {written / replicates / 1e3:.1f} kB written per replicate",
        )
        row("warm (same cache)", "warm", f"{replicates} hits")
        row("uncached (CachePlugin(enabled=False))", "uncached")
        rate = array.nbytes / digest_ms / 1e6
        print(
            f"{'cache key of an 8 MB input':40}{digest_ms:8.2f}{'':8}   "
            f"{rate:.1f} GB/s; part of warm and cold"
        )
        print()
        ratio = ms["warm"] / ms["cold"]
        overhead = (ms["uncached"] / ms["bare"] - 1) * 100
        cpu_overhead = (cpu["uncached"] / cpu["bare"] - 1) * 100
        checks = [
            ("warm per replicate", f"{ms['warm']:.2f} ms", f"<= {TARGET_WARM_MS:g} ms",
             ms["warm"] <= TARGET_WARM_MS),
            ("warm / cold", f"{ratio:.3f}", f"<= {TARGET_WARM_COLD:.2f}",
             ratio <= TARGET_WARM_COLD),
            ("uncached vs bare", f"{overhead:+.2f} %", f"<= {TARGET_UNCACHED_PERCENT:g} %",
             overhead <= TARGET_UNCACHED_PERCENT),
        ]  # fmt: skip
        for label, value, target, met in checks:
            print(f"{label:20}{value:>10}   target {target:10}{verdict(met)}")
        print(f"  (in CPU time: {cpu_overhead:+.2f} %; wall time is noisy on a busy machine)")
        if problems:
            print()
            print("problems:")
            for problem in problems:
                print(f"  {problem}")
        if args.profile or ms["warm"] > TARGET_WARM_MS:
            print()
            above = ms["warm"] > TARGET_WARM_MS
            print(f"profile of a warm run{' (warm is above its target)' if above else ''}:")
            print(profile_warm(experiment(root_dir=root / "cache-0")))
        os.chdir(PROJECT_ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
