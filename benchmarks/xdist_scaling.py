"""How well ``pytest --crystallize`` spreads one experiment's replicates over xdist workers.

What it measures
----------------
1. Scaling: an experiment of 2 conditions x 48 replicates whose step burns about 100 ms of
   CPU (a fixed number of loop iterations, calibrated here before the runs), run by
   ``pytest --crystallize`` with ``-n 0`` and with ``-n 2``; it prints both wall
   times and the ratio ``-n 2`` / ``-n 0`` (target on 2 cores: <= 0.60, which is 0.5 plus
   xdist's own start-up). It also reports whether the workers imported scipy (they must not
   unless the experiment does; this one does not).
2. The plugin's cost per chunk item: pytest with ``-n 0`` on a trivial experiment with 201
   conditions (201 chunk items) against the same experiment with one condition (1 item), in
   the same invocation; (difference of wall times) / 200 (target <= 2 ms per item).
3. The plugin's start-up cost without ``--crystallize``: the median of ``pytest -q`` on a
   plain test (and of ``pytest --version``) with only this plugin loaded, against none.

Each pytest run is a fresh process in a temporary directory, with ``-p no:cacheprovider``
and ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`` (loading only xdist and this plugin), so other
plugins installed on the machine are not measured in every worker.

How to run
----------
From the project root, with the package installed (``pip install -e .``)::

    python3 benchmarks/xdist_scaling.py
    python3 benchmarks/xdist_scaling.py --burn-ms 20 --replicates 24   # quicker smoke test
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BURN_EXPERIMENT = """
from __future__ import annotations

import sys
import time

from pytest_crystallize import Experiment, data_source, pipeline_step, treatment


@data_source
def source(ctx):
    return ctx["replicate"]


@pipeline_step()
def burn(data, ctx, *, iterations: int, delta: float = 0.0):
    x = data
    for _ in range(iterations):  # a fixed amount of CPU work (about burn_ms, calibrated)
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return data, {{"value": data + delta, "scipy_loaded": float("scipy" in sys.modules)}}


experiment = (
    Experiment.builder("burn")
    .datasource(source())
    .add_step(burn())
    .initial_ctx({{"iterations": {iterations}}})
    .treatments([treatment("shifted", {{"delta": 1.0}})])
    .replicates({replicates})
    .build()
)
"""

TRIVIAL_EXPERIMENT = """
from __future__ import annotations

from pytest_crystallize import Experiment, data_source, pipeline_step, treatment


@data_source
def source(ctx):
    return 1


@pipeline_step()
def step(data, ctx, *, delta: int = 0):
    return data, {{"value": data + delta}}


experiment = (
    Experiment.builder("trivial")
    .datasource(source())
    .add_step(step())
    .treatments([treatment(f"t{{i}}", {{"delta": i}}) for i in range({treatments})])
    .replicates(1)
    .build()
)
"""

CHECK_SCIPY = """
from __future__ import annotations

import sys

import pytest


def pytest_sessionfinish(session):
    if hasattr(session.config, "workerinput") and "scipy" in sys.modules:
        print("WORKER-IMPORTED-SCIPY", file=sys.stderr)
"""


def run_pytest(folder: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    # Only pytest, xdist and this plugin: other plugins installed on the machine (hypothesis's
    # costs half a second per process) would be measured too, in every worker.
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "xdist.plugin",
        "-p",
        "pytest_crystallize.plugin",
        "--crystallize",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        [*command, *args], cwd=folder, capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        msg = f"pytest {' '.join(args)} exited {done.returncode}"
        raise SystemExit(msg)
    return elapsed, done


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")


def calibrate(burn_ms: float) -> int:
    """How many iterations of the step's loop take ``burn_ms`` of CPU here (best of 5)."""
    trial = 200_000
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        x = 1
        for _ in range(trial):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        best = min(best, time.process_time() - start)
    return int(trial * burn_ms / 1000 / best)


def scaling(burn_ms: float, replicates: int) -> None:
    iterations = calibrate(burn_ms)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(
            folder,
            "experiment_burn.py",
            BURN_EXPERIMENT.format(iterations=iterations, replicates=replicates),
        )
        (folder / "conftest.py").write_text(CHECK_SCIPY, encoding="utf-8")
        serial, _ = run_pytest(folder, "-n", "0")
        parallel, done = run_pytest(folder, "-n", "2")
    ideal = 2 * replicates * burn_ms / 1000
    print(
        f"scaling: 2 conditions x {replicates} replicates, {burn_ms:g} ms of CPU per run "
        f"({ideal:.1f} s of work)"
    )
    print(f"  -n 0: {serial:6.2f} s")
    print(f"  -n 2: {parallel:6.2f} s")
    print(f"  ratio -n 2 / -n 0: {parallel / serial:.3f}   (target <= 0.60)")
    imported = "WORKER-IMPORTED-SCIPY" in done.stderr
    print(f"  workers imported scipy: {'yes' if imported else 'no'}")


def per_item(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one", Path(tmp) / "many"
        one.mkdir()
        many.mkdir()
        write(one, "experiment_trivial.py", TRIVIAL_EXPERIMENT.format(treatments=0))
        write(many, "experiment_trivial.py", TRIVIAL_EXPERIMENT.format(treatments=200))
        base = min(run_pytest(one, "-n", "0")[0] for _ in range(repeats))
        full = min(run_pytest(many, "-n", "0")[0] for _ in range(repeats))
    cost = (full - base) / 200 * 1000
    print(
        f"plugin cost per chunk item (-n 0, best of {repeats}): 1 item {base:.3f} s, "
        f"201 items {full:.3f} s -> {cost:.2f} ms per item   (target <= 2 ms)"
    )


PLAIN_TEST = """
def test_nothing():
    pass
"""


def startup(repeats: int) -> None:
    """What the installed plugin adds to a pytest run that does not use it (no --crystallize).

    Median wall time of ``pytest -q`` on one plain test, with only this plugin loaded against
    no plugin at all (PYTEST_DISABLE_PLUGIN_AUTOLOAD), and of ``pytest --version``.
    """
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

    def median_ms(folder: Path, *args: str) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "pytest", *args],
                cwd=folder,
                capture_output=True,
                env=env,
                check=False,
            )
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2] * 1000

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(folder, "test_plain.py", PLAIN_TEST)
        plugin = ("-p", "pytest_crystallize.plugin")
        for label, args in (("pytest --version", ("--version",)), ("pytest -q", ("-q",))):
            without = median_ms(folder, *args)
            with_plugin = median_ms(folder, *plugin, *args)
            print(
                f"start-up, {label:16} {without:6.1f} ms without the plugin, {with_plugin:6.1f}"
                f" ms with it: +{with_plugin - without:.1f} ms   (target < 30 ms)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burn-ms", type=float, default=100.0, help="CPU per run (ms)")
    parser.add_argument("--replicates", type=int, default=48, help="replicates per condition")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the per-item runs")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    scaling(args.burn_ms, args.replicates)
    per_item(args.repeats)
    startup(max(args.repeats * 5, 11))


if __name__ == "__main__":
    main()
