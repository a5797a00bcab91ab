"""The three ways to scale, timed: one session, shards merged once, a Dask cluster.

What it measures
----------------
A CPU-bound experiment (pure-Python work, about ``--seconds`` seconds of it serially: 2
conditions x ``--replicates`` replicates, each run calibrated to its share) run by
``pytest --crystallize``:

* (a) in one session (``-n 0``), the reference;
* (b) as two shard sessions started at once (``--crystallize-shard=1/2`` and ``2/2``, each
  writing its JSON), then ``--crystallize-merge`` of the two files: the wall time from the
  start of the shards to the end of the merge;
* (c) in one session whose chunks send their runs to a Dask ``LocalCluster`` of two worker
  processes (``--crystallize-dask=ADDRESS``); the cluster is started before the session (as
  a CI job would find it running) and its start-up is printed apart.

It prints each wall time (median of ``--repeat`` repetitions, taken in turn so that the ways
of one repetition see the same machine), the median of its ratios to (a) in each repetition
with their range, and checks that (b) and (c) give the verdicts and
p-values of (a), digit for digit. Targets on 2 cores: (b) <= 0.65, (c) <= 0.70.

The merge on its own (100 experiments x 2 conditions x 50 replicates, under 1 s) is timed by
``benchmarks/merge.py``.

Each pytest session is a fresh process with ``-p no:cacheprovider`` and
``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`` (loading only xdist and this plugin, as
``benchmarks/sequential.py`` does). It exits 0 whatever the figures are (2 when a way gives
other verdicts than (a)).

How to run
----------
From the project root, with the package and distributed installed
(``pip install -e '.[dask]'``)::

    python3 benchmarks/scale.py
    python3 benchmarks/scale.py --seconds 4 --repeat 1     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

WORK = """
from __future__ import annotations

from pytest_crystallize import (
    Experiment,
    Hypothesis,
    SeedPlugin,
    data_source,
    pipeline_step,
    stats,
    treatment,
)

LOOPS = {loops}


@data_source
def start(ctx):
    return int(ctx.rng.integers(1, 1000))


@pipeline_step()
def burn(value, ctx, *, extra=0):
    total = value
    for i in range(LOOPS):  # the CPU-bound part of a run
        total = (total * 31 + i) % 1000003
    noise = float(ctx.rng_for("noise").normal(0.0, 1.0))
    return total, {{"score": noise + extra + (total % 7) * 0.0}}


heavy = (
    Experiment.builder("heavy")
    .datasource(start())
    .add_step(burn())
    .treatments([treatment("better", {{"extra": 0.5}})])
    .hypotheses(
        [Hypothesis(verifier=stats.welch_t_test(alternative="greater"), metrics="score")]
    )
    .plugins([SeedPlugin(seed=7)])
    .replicates({replicates})
    .build()
)
"""


def loops_per_second() -> float:
    """Iterations of the experiment's loop per second on this machine, in this Python: the
    median of seven measurements of a tenth of a second (a shared machine's speed varies)."""
    rates = []
    for _ in range(7):
        loops, total, start = 1_000_000, 1, time.perf_counter()
        for i in range(loops):
            total = (total * 31 + i) % 1000003
        rates.append(loops / (time.perf_counter() - start))
    return statistics.median(rates)


def work_seconds(*reports: Path) -> float:
    """The runs' own durations in shard reports: the serial work the sessions did."""
    return sum(
        run["duration"]
        for report in reports
        for entry in json.loads(report.read_text(encoding="utf-8"))["shard"]["experiments"]
        for run in entry["runs"]
    )


def pytest_args(*extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "pytest", "--crystallize", "-q", "-p", "no:cacheprovider"),
        *("-p", "xdist", "-p", "pytest_crystallize.plugin"),
        *extra,
    ]


def environment() -> dict[str, str]:
    # Only xdist and this plugin: other plugins of a development environment (hypothesis's
    # imports hypothesis at every session's end) would be paid by each session.
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


def session(folder: Path, *extra: str) -> subprocess.Popen[str]:
    """A pytest session in ``folder``, started (not waited for)."""
    return subprocess.Popen(
        pytest_args(*extra),
        cwd=folder,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate()
    if process.returncode not in (0, 1):
        sys.exit(f"pytest failed ({process.returncode}):\n{out}")
    return out


def verdicts(report: Path) -> list[tuple[str, str, float | None]]:
    """(name, outcome, p-value) of every verdict of a JSON report."""
    data = json.loads(report.read_text(encoding="utf-8"))
    return sorted(
        (f"{e['name']}::{v['hypothesis']}::{v['treatment']}", v["outcome"], v.get("pvalue"))
        for e in data["experiments"]
        for v in e["verdicts"]
    )


def one_session(folder: Path) -> float:
    start = time.perf_counter()
    finish(session(folder, "-n", "0", "--crystallize-json", "one.json"))
    return time.perf_counter() - start


def sharded(folder: Path, merges: list[float]) -> float:
    """The two shards started at once, then the merge; the merge's own time goes to
    ``merges``."""
    start = time.perf_counter()
    shards = [
        session(folder, "-n", "0", f"--crystallize-shard={k}/2", f"--crystallize-json=s{k}.json")
        for k in (1, 2)
    ]
    for shard in shards:
        finish(shard)
    merge_start = time.perf_counter()
    merge = ("--crystallize-merge=s1.json", "--crystallize-merge=s2.json")
    finish(session(folder, *merge, "--crystallize-json", "merged.json"))
    end = time.perf_counter()
    merges.append(end - merge_start)
    return end - start


def on_dask(folder: Path, address: str) -> float:
    start = time.perf_counter()
    finish(
        session(
            folder, "-n", "0", f"--crystallize-dask={address}", "--crystallize-json", "dask.json"
        )
    )
    return time.perf_counter() - start


def timed(repeat: int, ways: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Each way's wall times, the ways taken in turn ``repeat`` times, in reverse order every
    other time (so that the ways of one repetition see the same machine, and a drift of a
    shared machine's speed favours none of them)."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    for repetition in range(repeat):
        order = list(ways) if repetition % 2 == 0 else list(reversed(ways))
        for name in order:
            times[name].append(ways[name]())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="serial work (s)")
    parser.add_argument("--replicates", type=int, default=40, help="per condition")
    parser.add_argument("--repeat", type=int, default=9, help="repetitions, median")
    options = parser.parse_args()
    try:
        from distributed import LocalCluster
    except ImportError:
        sys.exit("benchmarks/scale.py needs distributed: pip install -e '.[dask]'")

    per_run = options.seconds / (2 * options.replicates)
    loops = int(loops_per_second() * per_run)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text = WORK.format(loops=loops, replicates=options.replicates)
        (folder / "experiment_heavy.py").write_text(text, encoding="utf-8")
        started = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
        cluster_start = time.perf_counter() - started
        merges: list[float] = []
        try:
            times = timed(
                options.repeat,
                {
                    "a": lambda: one_session(folder),
                    "b": lambda: sharded(folder, merges),
                    "c": lambda: on_dask(folder, cluster.scheduler_address),
                },
            )
        finally:
            cluster.close()
        same = {
            way: verdicts(folder / name) == verdicts(folder / "one.json")
            for way, name in (("b", "merged.json"), ("c", "dask.json"))
        }
        work = work_seconds(folder / "s1.json", folder / "s2.json")
        print(
            f"a CPU-bound experiment: 2 conditions x {options.replicates} replicates of about "
            f"{per_run * 1000:.0f} ms, {options.seconds:g} s serially (the last shards' runs "
            f"took {work:.2f} s); median of "
            f"{options.repeat} (Dask LocalCluster of 2 workers started in {cluster_start:.2f} s,"
            " before the sessions)"
        )
        rows = (
            ("a", "one session (-n 0)", None),
            ("b", "2 shards at once + merge", 0.65),
            ("c", "Dask LocalCluster, 2 workers", 0.70),
        )
        for way, label, target in rows:
            # the median of the repetitions' ratios, and their range
            ratios = [w / a for w, a in zip(times[way], times["a"], strict=True)]
            spread = f"[{min(ratios):.2f}-{max(ratios):.2f}]"
            tail = "" if target is None else f"  (target <= {target:.2f})"
            check = "" if way == "a" else ("  same verdicts" if same[way] else "  OTHER VERDICTS")
            wall = statistics.median(times[way])
            print(
                f"({way}) {label:<30} {wall:6.2f} s  {statistics.median(ratios):5.2f} "
                f"{spread}{tail}{check}"
            )
        print(f"    of (b): the merge {statistics.median(merges):.2f} s")
        status = 0 if all(same.values()) else 2

    sys.exit(status)


if __name__ == "__main__":
    main()
