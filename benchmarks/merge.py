"""The merge of shards: load, check and judge 100 experiments x 2 conditions x 50 replicates
(issue 15, item 1: under 1 s).

What it measures
----------------
A temporary project holds one experiment file defining ``--experiments`` experiments (100),
each with a baseline and one treatment of ``--replicates`` replicates (50), a data source
drawing one normal number and a paired t-test hypothesis. It runs ``--shards`` shards (2,
each ``pytest --crystallize --crystallize-shard=K/N --crystallize-json=shard-K.json -p
no:xdist``, in a subprocess), then the merge in this process (``pytest.main``), best of
``--repeats`` (3), and prints, in milliseconds:

* ``read``: reading the shard reports (``read_shard``) and checking them together
  (``check_shards``: N, each shard once, package versions);
* ``check``: checking them against the experiments (``check_experiments``: fingerprints and
  every replicate exactly once; this imports the experiment file, which collection reuses);
* ``judge``: the session's run loop: every chunk replays its runs, every experiment is judged
  and its verdicts reported;
* ``merge``: the three together (the target: under 1000 ms);
* ``session``: the whole merge session, pytest's start, collection and exit included.

It also checks that the merge's verdicts are those of one unsharded session (p-values in the
JSON reports, to the last digit). Nothing is written to the working directory.

How to run
----------
From the project root::

    python3 benchmarks/merge.py
    python3 benchmarks/merge.py --experiments 100 --replicates 50 --shards 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = """
from pytest_crystallize import Experiment, data_source, hypothesis, pipeline_step, stats, treatment


@data_source
def noise(ctx):
    return float(ctx.rng.normal(0.0, 1.0))


@pipeline_step()
def shift(value, ctx, *, delta=0.0):
    return value + delta, {{"score": value + delta}}


@hypothesis(verifier=stats.paired_t_test(), metrics="score")
def better(result):
    return result["p_value"]


EXPERIMENTS = [
    Experiment.builder(f"exp{{i:03d}}")
    .datasource(noise())
    .add_step(shift())
    .treatments([treatment("lift", {{"delta": 0.01 * i}})])
    .hypotheses([better])
    .replicates({replicates})
    .build()
    for i in range({experiments})
]
"""
INI = "[pytest]\naddopts = -p no:benchmark -p no:hypothesispytest -p no:sugar -p no:randomly\n"


class Timer:
    """Times the merge's parts inside its session."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self) -> None:
        self.marks["check"] = time.perf_counter()  # the merge checks in its sessionstart

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self) -> None:
        self.marks["checked"] = time.perf_counter()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self) -> Generator[None, Any, Any]:
        self.marks["judge"] = time.perf_counter()
        try:
            return (yield)
        finally:
            self.marks["judged"] = time.perf_counter()


def _verdicts(path: Path) -> list[Any]:
    report = json.loads(path.read_text(encoding="utf-8"))
    experiments = report["experiments"]
    return [(v["nodeid"], v["pvalue"], v["outcome"]) for e in experiments for v in e["verdicts"]]


def _pytest(folder: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(folder / "xdg")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--crystallize", "-p", "no:xdist", "-q", *args],
        cwd=folder, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode not in (0, 1):
        raise SystemExit(done.stdout + done.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=int, default=100)
    parser.add_argument("--replicates", type=int, default=50)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from pytest_crystallize._harness.merge import check_shards  # this checkout's
    from pytest_crystallize._harness.replay import read_shard

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = SOURCE.format(experiments=options.experiments, replicates=options.replicates)
        (folder / "experiment_many.py").write_text(source, encoding="utf-8")
        (folder / "pytest.ini").write_text(INI, encoding="utf-8")
        os.environ["XDG_CONFIG_HOME"] = str(folder / "xdg")
        n = options.shards
        for k in range(1, n + 1):
            _pytest(folder, f"--crystallize-shard={k}/{n}", f"--crystallize-json=shard-{k}.json")
        _pytest(folder, "--crystallize-json=one.json")
        paths = [folder / f"shard-{k}.json" for k in range(1, n + 1)]
        best: dict[str, float] = {}
        os.chdir(folder)
        for _ in range(options.repeats):
            start = time.perf_counter()
            check_shards([read_shard(p) for p in paths])
            read = time.perf_counter() - start
            timer = Timer()
            start = time.perf_counter()
            pytest.main(
                ["--crystallize", "--crystallize-merge=shard-*.json", "-p", "no:xdist", "-q",
                 "--crystallize-json=all.json", "-p", "no:cacheprovider"],
                plugins=[timer],
            )  # fmt: skip
            session = time.perf_counter() - start
            m = timer.marks
            figures = {
                "read": read,
                "check": m["checked"] - m["check"],
                "judge": m["judged"] - m["judge"],
                "session": session,
            }
            figures["merge"] = figures["read"] + figures["check"] + figures["judge"]
            best = {k: min(v, best.get(k, v)) for k, v in figures.items()}
        os.chdir(ROOT)
        same = _verdicts(folder / "all.json") == _verdicts(folder / "one.json")
        shape = f"{options.experiments} experiments x 2 conditions x {options.replicates}"
        print(f"merge of {n} shards, {shape} replicates (best of {options.repeats}):")
        for name in ("read", "check", "judge", "merge", "session"):
            print(f"  {name:8} {best[name] * 1000:8.0f} ms")
        print(f"  target   merge < 1000 ms: {'met' if best['merge'] < 1 else 'NOT met'}")
        print(f"  verdicts identical to one session: {same}")


if __name__ == "__main__":
    main()
