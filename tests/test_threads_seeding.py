"""Runs on threads in a fresh interpreter that has not imported numpy: every run succeeds.

Seeding and ``ctx.rng`` import numpy on first use; when four threads did that at once, most
runs failed with "partially initialized module 'numpy'". The thread executor now imports
numpy once, in the calling thread, before any run starts.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys

    from pytest_crystallize import (
        Experiment, ParallelExecution, data_source, pipeline_step, treatment,
    )

    @data_source
    def start(ctx):
        return 0.0

    @pipeline_step
    def draw(data, ctx):
        return data, {"x": float(ctx.rng.normal()), "y": float(ctx.rng_for("y").normal())}

    experiment = Experiment(
        start(),
        [draw()],
        plugins=[ParallelExecution(max_workers=4)],
        name="threads",
        treatments=[treatment("other", {"k": 1})],
        replicates=12,
    )
    print("numpy before run:", "numpy" in sys.modules)
    result = experiment.run()
    print("runs:", len(result.runs))
    print("errors:", sorted(e.summary() for e in result.errors.values()))
    print("values:", len(result.metrics.baseline.metrics["x"]) + len(
        result.metrics.treatments["other"].metrics["x"]))
    """
)


def test_threads_seed_and_draw_without_numpy_imported_first(tmp_path: Path) -> None:
    script = tmp_path / "threads.py"
    script.write_text(SCRIPT)
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-W", "error::RuntimeWarning", str(script)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "numpy before run: False",
            "runs: 24",
            "errors: []",
            "values: 24",
        ]


def test_threads_give_the_serial_values(tmp_path: Path) -> None:
    script = tmp_path / "compare.py"
    script.write_text(
        SCRIPT.replace('print("numpy before run:", "numpy" in sys.modules)\n', "")
        + textwrap.dedent(
            """
            from pytest_crystallize import SerialExecution
            experiment.plugins = [p for p in experiment.plugins
                                  if not isinstance(p, ParallelExecution)] + [SerialExecution()]
            experiment._pm = None
            serial = experiment.run()
            print("same:", serial.metrics.baseline.metrics == result.metrics.baseline.metrics
                  and serial.metrics.treatments["other"].metrics
                  == result.metrics.treatments["other"].metrics)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "same: True"
