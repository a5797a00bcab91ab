"""What a sequential design saves: replicates run and wall time, fixed against sequential.

What it measures
----------------
Two experiments of 48 replicates per condition with ``.sequential(looks=4)``, each run costing
about ``--run-ms`` milliseconds (a sleep standing for a model evaluation), run by
``pytest --crystallize``:

* ``effect``: a treatment with a real effect (one-sided paired t-test);
* ``aa``: an A/A experiment (the treatment changes nothing) gated by non-inferiority.

Each is run with its design (sequential) and with ``--crystallize-sequential=off`` (fixed: every
replicate), under ``-n 0`` and ``-n 2``. The script prints the replicates run per condition
(from the JSON report), the wall times and the ratios sequential / fixed. Targets under
``-n 2``: <= 0.70 on the A/A experiment and <= 0.85 on the effect experiment. It exits 0
whatever the figures are.

Each pytest run is a fresh process in a temporary directory with ``-p no:cacheprovider``
(decisions then live in the temporary folder) and ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``
(loading only xdist and this plugin).

How to run
----------
From the project root, with the package installed (``pip install -e .``)::

    python3 benchmarks/sequential.py
    python3 benchmarks/sequential.py --run-ms 10      # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENTS = """
from __future__ import annotations

import time

from pytest_crystallize import Experiment, Hypothesis, data_source, pipeline_step, stats, treatment

RUN_SECONDS = {run_seconds!r}


@data_source
def traffic(ctx):
    return float(ctx.rng_for("traffic").normal(0.30, 0.05))


@pipeline_step()
def evaluate(rate, ctx, *, lift=0.0, order="noise"):
    time.sleep(RUN_SECONDS)  # the cost of one run (a model evaluation)
    return rate, {{"ctr": rate + lift + float(ctx.rng_for(order).normal(0.0, 0.01))}}


better = Hypothesis(
    verifier=stats.paired_t_test(alternative="greater"), metrics="ctr", name="better"
)
not_worse = Hypothesis(
    verifier=stats.non_inferior(margin=0.05, relative=True), metrics="ctr", name="not_worse"
)

effect = (
    Experiment.builder("effect")
    .datasource(traffic())
    .add_step(evaluate())
    .treatments([treatment("lifted", {{"lift": 0.006}})])
    .hypotheses([better])
    .replicates(48)
    .sequential(looks=4)
    .build()
)

aa = (
    Experiment.builder("aa")
    .datasource(traffic())
    .add_step(evaluate())
    .treatments([treatment("same_model", {{"order": "other-noise"}})])
    .hypotheses([not_worse])
    .replicates(48)
    .sequential(looks=4)
    .build()
)
"""


def run(folder: Path, experiment: str, workers: str, fixed: bool) -> tuple[float, int, str]:
    """One pytest session: wall seconds, replicates run per condition, the verdict's word."""
    report = folder / f"{experiment}-{workers}-{'fixed' if fixed else 'seq'}.json"
    args = [sys.executable, "-m", "pytest", "--crystallize", "-q", "-p", "no:cacheprovider"]
    args += ["-p", "xdist", "-p", "pytest_crystallize.plugin", "-k", experiment]
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
    (found,) = [e for e in data["experiments"] if e["name"] == experiment]
    verdict = found["verdicts"][0]["outcome"]
    return wall, int(found["replicates"]), verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--run-ms", type=float, default=40.0, help="cost of one run (ms)")
    options = parser.parse_args()
    targets = {"aa": 0.70, "effect": 0.85}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = EXPERIMENTS.format(run_seconds=options.run_ms / 1000)
        (folder / "experiment_sequential_bench.py").write_text(source, encoding="utf-8")
        print(f"2 conditions x 48 replicates, 4 looks, about {options.run_ms:g} ms per run")
        header = f"{'experiment':<10} {'-n':>3} {'fixed':>14} {'sequential':>16} {'ratio':>7}"
        print(header)
        for workers in ("0", "2"):
            for experiment in ("effect", "aa"):
                f_wall, f_reps, f_word = run(folder, experiment, workers, fixed=True)
                s_wall, s_reps, s_word = run(folder, experiment, workers, fixed=False)
                ratio = s_wall / f_wall
                target = f" (target <= {targets[experiment]:.2f})" if workers == "2" else ""
                print(
                    f"{experiment:<10} {workers:>3} {f_wall:6.2f} s {f_reps:3d} rep "
                    f"{s_wall:6.2f} s {s_reps:3d} rep {ratio:7.2f}{target}"
                    f"   verdicts: fixed {f_word}, sequential {s_word}"
                )


if __name__ == "__main__":
    main()
