"""What a sequential design saves: replicates run and wall time, fixed against sequential.

What it measures
----------------
Experiments of 48 replicates per condition with ``.sequential(looks=4)``, each run costing
about ``--run-ms`` milliseconds (a sleep standing for a model evaluation), gated by "the
candidate beats the baseline" (a one-sided paired t-test on click-through), run by
``pytest --crystallize``:

* ``effect``: the candidate has a real effect (the fixed design detects it 93% of the time);
* ``aa``: an A/A experiment: the candidate changes nothing (only its noise stream differs),
  the case of most pull requests; the futility rule stops it early.

Where a design stops depends on the data, so each kind is ``--seeds`` experiments (8 by
default) with different seeds, run in one session. Each kind is run with its design
(sequential) and with ``--crystallize-sequential=off`` (fixed: every replicate), under ``-n 0``
and ``-n 2``, ``--repeat`` times (3 by default, fixed and sequential in turn, so both see the
same machine). The script prints the replicates run per condition (from the JSON report,
summed over the experiments), the median wall times, the ratio of the medians sequential /
fixed (with the lowest and highest ratio of a repetition), and each experiment's verdict
(``p``/``f``) with the look that decided it. Targets under ``-n 2``: <= 0.70 on the A/A
experiments and <= 0.85 on the effect ones. It exits 0 whatever the figures are. A session's
start (about 1.5 s more with two xdist workers) is paid by both designs, so the ratios approach
the ratio of replicates as runs get dearer (``--run-ms``).

Each pytest run is a fresh process in a temporary directory with ``-p no:cacheprovider``
(decisions then live in the temporary folder) and ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``
(loading only xdist and this plugin).

How to run
----------
From the project root, with the package installed (``pip install -e .``)::

    python3 benchmarks/sequential.py
    python3 benchmarks/sequential.py --run-ms 10 --repeat 1      # quicker
    python3 benchmarks/sequential.py --run-ms 100 --workers 2    # costlier runs, -n 2 only
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
from pathlib import Path

HEADER = """
from __future__ import annotations

import time

from pytest_crystallize import (
    Experiment,
    Hypothesis,
    SeedPlugin,
    data_source,
    pipeline_step,
    stats,
    treatment,
)

RUN_SECONDS = {run_seconds!r}


@data_source
def traffic(ctx):
    return float(ctx.rng_for("traffic").normal(0.30, 0.05))


@pipeline_step()
def evaluate(rate, ctx, *, lift=0.0, noise="noise"):
    time.sleep(RUN_SECONDS)  # the cost of one run (a model evaluation)
    return rate, {{"ctr": rate + lift + float(ctx.rng_for(noise).normal(0.0, 0.01))}}


better = Hypothesis(
    verifier=stats.paired_t_test(alternative="greater"), metrics="ctr", name="better"
)
"""

EXPERIMENT = """

{name} = (
    Experiment.builder("{name}")
    .datasource(traffic())
    .add_step(evaluate())
    .treatments([treatment("candidate", {{"lift": {lift!r}, "noise": "candidate-noise"}})])
    .hypotheses([better])
    .plugins([SeedPlugin(seed={seed})])
    .replicates(48)
    .sequential(looks=4)
    .build()
)
"""

# The effect: a lift of 0.006 on a click-through rate whose paired differences have a
# standard deviation of 0.01 * sqrt(2): the fixed one-sided test at 48 has 93% power.
LIFTS = {"effect": 0.006, "aa": 0.0}


def source(run_ms: float, seeds: int) -> str:
    """The experiment file: ``effect_<k>`` and ``aa_<k>`` for each of ``seeds`` seeds."""
    parts = [HEADER.format(run_seconds=run_ms / 1000)]
    for kind, lift in LIFTS.items():
        for k in range(seeds):
            parts.append(EXPERIMENT.format(name=f"{kind}_{k}", lift=lift, seed=1000 + k))
    return "".join(parts)


def run(folder: Path, kind: str, workers: str, fixed: bool) -> tuple[float, int, str]:
    """One pytest session of every ``kind`` experiment: wall seconds, the replicates run per
    condition (summed over the experiments), and their looks and verdicts in short."""
    report = folder / f"{kind}-{workers}-{'fixed' if fixed else 'seq'}.json"
    args = [sys.executable, "-m", "pytest", "--crystallize", "-q", "-p", "no:cacheprovider"]
    args += ["-p", "xdist", "-p", "pytest_crystallize.plugin", "-k", kind]
    args += ["-n", workers, "--crystallize-json", str(report)]
    if fixed:
        args.append("--crystallize-sequential=off")
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env.pop("GITHUB_STEP_SUMMARY", None)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"pytest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(report.read_text(encoding="utf-8"))
    found = [e for e in data["experiments"] if e["name"].startswith(f"{kind}_")]
    replicates = sum(int(e["replicates"]) for e in found)
    words = []
    for e in found:
        look = (e.get("sequential") or {}).get("stopped_at_look")
        words.append(f"{e['verdicts'][0]['outcome'][0]}{look or ''}")
    return wall, replicates, " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--run-ms", type=float, default=40.0, help="cost of one run (ms)")
    parser.add_argument("--seeds", type=int, default=8, help="experiments of each kind")
    parser.add_argument("--repeat", type=int, default=3, help="sessions of each kind, median")
    parser.add_argument(
        "--workers", default="0,2", help="the -n values to run, comma-separated (default 0,2)"
    )
    options = parser.parse_args()
    targets = {"aa": 0.70, "effect": 0.85}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text = source(options.run_ms, options.seeds)
        (folder / "experiment_sequential_bench.py").write_text(text, encoding="utf-8")
        most = 48 * options.seeds
        print(
            f"{options.seeds} experiments of each kind, 2 conditions x 48 replicates, 4 looks, "
            f"about {options.run_ms:g} ms per run; replicates per condition summed; median of "
            f"{options.repeat} sessions (ratio range over the repetitions)"
        )
        print(f"{'kind':<7} {'-n':>3} {'fixed':>15} {'sequential':>17} {'ratio':>6}")
        for workers in options.workers.split(","):
            for kind in LIFTS:
                fixed, sequential = [], []
                for _ in range(max(1, options.repeat)):
                    fixed.append(run(folder, kind, workers, fixed=True))
                    sequential.append(run(folder, kind, workers, fixed=False))
                f_wall = statistics.median(r[0] for r in fixed)
                s_wall = statistics.median(r[0] for r in sequential)
                ratios = [s[0] / f[0] for f, s in zip(fixed, sequential, strict=True)]
                (_, f_reps, f_words), (_, s_reps, s_words) = fixed[0], sequential[0]
                target = f" (target <= {targets[kind]:.2f})" if workers == "2" else ""
                print(
                    f"{kind:<7} {workers:>3} {f_wall:6.2f} s {f_reps:3d}/{most} "
                    f"{s_wall:6.2f} s {s_reps:3d}/{most} {s_wall / f_wall:6.2f} "
                    f"[{min(ratios):.2f}-{max(ratios):.2f}]{target}\n"
                    f"            verdicts fixed: {f_words}; sequential (look): {s_words}"
                )


if __name__ == "__main__":
    main()
