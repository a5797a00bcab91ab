"""Cost of the statistics layer: each built-in verifier, and the whole judge step for one
hypothesis, at n = 10, 30 and 50 replicates per condition with default resample counts.

What it measures
----------------
* ``verifier``: one call ``verifier(baseline, treatment)`` on ``{metric: [values]}`` samples
  whose seeds match (so the paired tests pair), continuous values correlated at 0.8 with a
  true effect of 0.5 sd. Rows marked ``ties`` use integer values, which send Mann-Whitney and
  Wilcoxon to their seeded permutation methods and ``auto()`` to a permutation test.
* ``judge``: ``pytest_crystallize._report.judge.judge`` for an experiment with one hypothesis (that
  verifier) and one treatment, on synthetic ``RunResult``s: building the per-condition
  metrics, evaluating, the family correction and the verdict with its message. This is what
  the plugin spends per hypothesis once the runs are in.

Each figure is the median of several calls (after one warm-up call, so imports and first-call
caches are not charged), in milliseconds. The target (issue 5, item 7) is at most 20 ms per
hypothesis at n <= 50 with default resample counts; rows over it are marked ``!``.

* ``large n``: each verifier called once at n = 1,000 and 10,000 per condition, in a fresh
  process, after a warm-up call at n = 20: the call's seconds and the peak memory it added
  (``ru_maxrss``). Target (issue 16, item 4): under 1 s and 200 MB at n = 10,000, printed
  as "holds" or "short".

The exit status never depends on the figures.

How to run
----------
From the project root::

    python3 benchmarks/stats.py             # at least 7 calls per figure
    python3 benchmarks/stats.py --quick     # 3 calls per figure
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from pytest_crystallize import (
    BASELINE_CONDITION,
    Experiment,
    Hypothesis,
    RunResult,
    data_source,
    pipeline_step,
    stats,
    treatment,
)
from pytest_crystallize._engine.hypotheses import Samples
from pytest_crystallize._report.judge import judge

SIZES = (10, 30, 50)
TARGET_MS = 20.0
LARGE = (1_000, 10_000)  # one call each, in a fresh process
LARGE_SECONDS, LARGE_MB = 1.0, 200.0
RHO = 0.8

# (label, verifier, integer-valued data with ties)
VERIFIERS: list[tuple[str, Any, bool]] = [
    ("welch_t_test", stats.welch_t_test(), False),
    ("paired_t_test", stats.paired_t_test(), False),
    ("mann_whitney", stats.mann_whitney(), False),
    ("mann_whitney (ties)", stats.mann_whitney(), True),
    ("wilcoxon", stats.wilcoxon(), False),
    ("wilcoxon (ties)", stats.wilcoxon(), True),
    ("permutation_test (paired)", stats.permutation_test(), False),
    ("permutation_test (independent)", stats.permutation_test(paired=False), False),
    ("bootstrap_ci (mean)", stats.bootstrap_ci(), False),
    ("bootstrap_ci (median)", stats.bootstrap_ci(statistic="median"), False),
    ("auto", stats.auto(), False),
    ("auto (ties)", stats.auto(), True),
    ("non_inferior", stats.non_inferior(margin=0.02, relative=True), False),
    ("equivalent", stats.equivalent(margin=0.02, relative=True), False),
]


def sample_values(n: int, ties: bool, seed: int = 2024) -> tuple[np.ndarray, np.ndarray]:
    z = np.random.default_rng(seed).standard_normal((2, n))
    baseline = 100.0 + z[0]
    treated = 100.5 + RHO * z[0] + np.sqrt(1 - RHO**2) * z[1]
    if ties:
        baseline, treated = np.round(baseline), np.round(treated)
    return baseline, treated


def as_samples(values: np.ndarray) -> Samples:
    s = Samples({"m": values.tolist()})
    s.seeds = tuple(1000 + i for i in range(len(values)))
    return s


@data_source
def replicate_index(ctx):
    return ctx["replicate"]


@pipeline_step()
def record(index, ctx):
    return index, {"m": float(index)}


def judge_call(verifier: Any, baseline: np.ndarray, treated: np.ndarray) -> Callable[[], Any]:
    n = len(baseline)
    experiment = (
        Experiment.builder("bench")
        .datasource(replicate_index())
        .add_step(record())
        .treatments([treatment("t", {})])
        .hypotheses([Hypothesis(verifier=verifier, metrics="m", name="h")])
        .replicates(n)
        .build()
    )
    runs = [
        RunResult(condition, i, 1000 + i, {"m": (float(v),)})
        for condition, values in ((BASELINE_CONDITION, baseline), ("t", treated))
        for i, v in enumerate(values)
    ]
    return lambda: judge("bench", experiment, runs, ["t"])


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    """The median of ``repeats`` calls (up to 3x as many while under a second in all)."""
    call()  # warm-up
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < repeats or (len(times) < 3 * repeats and time.perf_counter() - began < 1.0):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def one_large_call(label: str, n: int) -> tuple[float, float]:
    """In this (fresh) process: the seconds of one verifier call at ``n`` per condition and
    the peak memory it added (MB), after a warm-up call at n = 20 (imports)."""
    import resource  # lazy: POSIX only, and only the child measures

    verifier, ties = next((v, ties) for name, v, ties in VERIFIERS if name == label)
    small = sample_values(20, ties)
    verifier(as_samples(small[0]), as_samples(small[1]))
    baseline, treated = sample_values(n, ties)
    b, t = as_samples(baseline), as_samples(treated)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    verifier(b, t)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return seconds, (peak - before) / 1024


def large_table() -> None:
    """Every verifier once at n = 1,000 and 10,000 per condition, each call in a fresh
    process (so its peak memory is its own). Target at 10,000: under 1 s and 200 MB."""
    import subprocess  # lazy: only this table starts processes

    print()
    print(
        f"one call at large n (a fresh process each): seconds / peak MB added; target at "
        f"n={LARGE[-1]}: < {LARGE_SECONDS:g} s and < {LARGE_MB:g} MB"
    )
    width = max(len(label) for label, _, _ in VERIFIERS)
    heads = "  ".join(f"{'n=' + str(n):>17}" for n in LARGE)
    print(f"{'verifier':<{width}}  {heads}  at n={LARGE[-1]}")
    for label, _, _ in VERIFIERS:
        cells, verdict = [], ""
        for n in LARGE:
            out = subprocess.run(
                [sys.executable, __file__, "--child", label, str(n)],
                capture_output=True,
                text=True,
                check=False,
            )
            try:
                seconds, mb = map(float, out.stdout.split())
            except ValueError:
                cells.append(f"{'failed':>17}")
                verdict = f"failed: {out.stderr.strip().splitlines()[-1:]}"
                continue
            cells.append(f"{seconds:>7.3f} s {mb:>6.0f} MB")
            if n == LARGE[-1]:
                held = seconds < LARGE_SECONDS and mb < LARGE_MB
                verdict = "holds" if held else "short"
        print(f"{label:<{width}}  {'  '.join(cells)}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 calls per figure")
    parser.add_argument("--child", nargs=2, metavar=("VERIFIER", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        seconds, mb = one_large_call(args.child[0], int(args.child[1]))
        print(f"{seconds} {mb}")
        return 0
    repeats = 3 if args.quick else 7

    width = max(len(label) for label, _, _ in VERIFIERS)
    columns = "  ".join(f"{'n=' + str(n):>8}" for n in SIZES)
    print(f"statistics layer, ms per call (median of >= {repeats}); target <= {TARGET_MS:g} ms")
    print(f"per hypothesis at n <= 50 with default resample counts ({stats.MAX_RESAMPLES})")
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        cores = os.cpu_count() or 1
        busy = " (busy machine: figures are inflated)" if load > cores else ""
        print(f"load average {load:.1f} on {cores} cores{busy}")
    print()
    print(f"{'verifier':<{width}}  {'what':<8}  {columns}")
    over: list[str] = []
    for label, verifier, ties in VERIFIERS:
        for what in ("verifier", "judge"):
            cells = []
            for n in SIZES:
                baseline, treated = sample_values(n, ties)
                if what == "verifier":
                    b, t = as_samples(baseline), as_samples(treated)

                    def call(v: Any = verifier, b: Samples = b, t: Samples = t) -> Any:
                        return v(b, t)
                else:
                    call = judge_call(verifier, baseline, treated)
                ms = median_ms(call, repeats)
                mark = "!" if ms > TARGET_MS else " "
                if what == "judge" and ms > TARGET_MS:
                    over.append(f"{label} at n={n}: {ms:.1f} ms")
                cells.append(f"{ms:>7.2f}{mark}")
            print(f"{label if what == 'verifier' else '':<{width}}  {what:<8}  {'  '.join(cells)}")
    print()
    if over:
        print(f"over the target of {TARGET_MS:g} ms per hypothesis (judge step):")
        for line in over:
            print(f"  {line}")
    else:
        print(f"every hypothesis is judged within {TARGET_MS:g} ms at n <= 50")
    large_table()
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # a measuring tool: report, never fail the caller
        print(f"benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(0)
