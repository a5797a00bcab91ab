"""What the test modules share: how a pytester session is run, experiment sources, helpers.

Fixtures (``ourtester``, ``write_experiment``, ``in_tmp_path``, ...) are in ``conftest.py``;
this module holds plain constants and functions, imported as ``from _support import ...``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# --- how a pytester session runs ------------------------------------------------------------

IN_PROCESS = ["-n", "0"]
TWO_WORKERS = ["-n", "2"]
NO_XDIST = ["-p", "no:xdist"]
MODES = [
    pytest.param(IN_PROCESS, id="n0"),
    pytest.param(TWO_WORKERS, id="n2"),
    pytest.param(NO_XDIST, id="no-xdist"),
]
# ``@in_every_mode`` runs a test taking ``dist`` once per mode; ``@with_and_without_workers``
# only in one process and with two workers.
in_every_mode = pytest.mark.parametrize("dist", MODES)
with_and_without_workers = pytest.mark.parametrize("dist", MODES[:2])


def chunks(dist: Sequence[str], with_workers: int) -> int:
    """Chunk items per condition: one in a single process, ``with_workers`` with two workers."""
    return with_workers if list(dist) == TWO_WORKERS else 1


# Plugins installed on a developer machine that are not project dependencies: keep them out of
# the inner runs (blocking a plugin that is not installed is a no-op).
INI = """\
[pytest]
addopts = -p no:benchmark -p no:hypothesispytest
{extra}
"""

# --- experiment files -----------------------------------------------------------------------

WELCH = """

@verifier
def welch(baseline, treatment, alpha=0.05):
    from scipy.stats import ttest_ind  # here: xdist workers, which never verify, skip scipy

    result = ttest_ind(treatment["score"], baseline["score"], equal_var=False)
    p_value = float(result.pvalue)
    return {returns}
"""

# What the verifier returns by default: a tutorial-style result.
SIGNIFICANT = '{"p_value": p_value, "significant": p_value < alpha}'


def builder_source(
    variable: str,
    *,
    source: str,
    steps: Sequence[str],
    treatments: str,
    replicates: int | str,
    hypotheses: str = "",
    calls: Sequence[str] = (),
    name: str | None = None,
) -> str:
    """Module source binding ``variable`` to ``Experiment.builder(name)...build()``: one
    ``.add_step`` per step, ``.treatments([treatments])``, ``.hypotheses([hypotheses])`` if
    any, then ``calls`` (such as ``.plugins([])``) and ``.replicates``."""
    lines = [
        f"{variable} = (",
        f'    Experiment.builder("{name or variable}")',
        f"    .datasource({source})",
        *(f"    .add_step({step})" for step in steps),
        f"    .treatments([{treatments}])",
        *([f"    .hypotheses([{hypotheses}])"] if hypotheses else []),
        *(f"    {call}" for call in calls),
        f"    .replicates({replicates})",
        "    .build()",
        ")",
    ]
    return "\n\n" + "\n".join(lines) + "\n"


def treatments_source(deltas: Mapping[str, float], key: str = "delta") -> str:
    """``treatment('a', {'delta': 1.0}), ...``: one treatment per name setting ``key``."""
    return ", ".join(f"treatment({t!r}, {{{key!r}: {d!r}}})" for t, d in deltas.items())


_DEMO_HEADER = (
    """\
from __future__ import annotations

import os

from pytest_crystallize import (
    Experiment,
    data_source,
    hypothesis,
    pipeline_step,
    treatment,
    verifier,
)


@data_source
def noise(ctx):
    return float(ctx.rng.normal(0.0, 1.0))


@pipeline_step()
def shift(value, ctx, *, delta=0.0):
{step_code}
    return value + delta, {{"score": value + delta}}
"""
    + WELCH  # its placeholder, {returns}, is formatted together with {step_code}
    + """

@hypothesis(verifier=welch(), metrics="score")
def by_p(result):
    return result["p_value"]
"""
)

# Replicate i gets the same seed in every condition, so "flat" (delta 0) reproduces the
# baseline exactly (p = 1, a failed verdict) and "boost" (delta 5, five standard deviations)
# gives p < 1e-4 whatever the seeds, which prints in exponent form ("p=1.2e-05").
DEFAULT_EXPERIMENTS: Mapping[str, Mapping[str, float]] = {"demo": {"boost": 5.0, "flat": 0.0}}
TWO_EXPERIMENTS = {"demo": {"boost": 5.0, "flat": 0.0}, "steady": {"lift": 5.0}}


def experiment_source(
    experiments: Mapping[str, Mapping[str, float]] = DEFAULT_EXPERIMENTS,
    *,
    replicates: int = 8,
    step_code: str = "",
    returns: str = SIGNIFICANT,
) -> str:
    """Source of an experiment file.

    Every experiment draws ``score = N(0, 1) + delta`` with ``ctx.rng``; each treatment sets
    ``delta``. ``step_code`` is inserted at the top of the step (``ctx`` and ``os`` are in
    scope); ``returns`` is the verifier's return expression (``p_value`` and ``alpha`` are in
    scope).
    """
    body = textwrap.indent(textwrap.dedent(step_code).strip(), "    ") or "    pass"
    parts = [_DEMO_HEADER.format(step_code=body, returns=returns)]
    for name, deltas in experiments.items():
        parts.append(
            builder_source(
                name,
                source="noise()",
                steps=["shift()"],
                treatments=treatments_source(deltas),
                hypotheses="by_p",
                replicates=replicates,
            )
        )
    return "".join(parts)


# Experiments whose metrics are pure functions of the replicate's seed, so a test can
# recompute every number: ``workload`` gives 100 + (seed % 1000) / 50, the file's own ``run``
# step adds the treatment's ``boost``, and ``faster`` is a paired t-test of ``total``.
SEEDED_HEADER = """\
from __future__ import annotations

from pytest_crystallize import (
    Experiment,
    SeedPlugin,
    data_source,
    hypothesis,
    pipeline_step,
    stats,
    treatment,
)

FACTOR = 1.0


@data_source
def workload(ctx):
    return 100.0 + (ctx.seed % 1000) / 50.0


@hypothesis(verifier=stats.paired_t_test(), metrics="total")
def faster(result):
    return result["p_value"]
"""


def seeded_source(run_step: str, *experiments: str) -> str:
    """A seeded experiment file: the shared header, the ``run`` step, then the experiments."""
    return SEEDED_HEADER + "\n\n" + textwrap.dedent(run_step).strip() + "\n" + "".join(experiments)


def replicate_seeds(name: str, replicates: int, root: int | None = None) -> list[int]:
    """The seed of each replicate of experiment ``name`` (under ``root``, else its default)."""
    from pytest_crystallize._engine.seeds import replicate_seed, stable_int

    root = stable_int(f"crystallize-root:{name}") if root is None else root
    return [replicate_seed(root, i) for i in range(replicates)]


def workload(seed: int) -> float:
    """What the seeded experiments' data source gives for ``seed``."""
    return 100.0 + (seed % 1000) / 50.0


def seeded_boost(seed: int, boost: float) -> float:
    """A boost that varies with the seed, so a paired difference has some variance."""
    return boost * (1.0 + (seed // 1000 % 10) / 10.0)


# --- reading a session's output -------------------------------------------------------------


def section(stdout: str, title: str = "crystallize") -> list[str]:
    """The lines of the terminal section ``==== title ====`` (its header, rows and notes), up
    to the next ``=`` line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip("= ") == title)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("="))
    return lines[start + 1 : end]


def parse_summary(stdout: str) -> dict[str, dict[str, str]]:
    """The rows of the ``crystallize`` terminal section, keyed by
    ``experiment::hypothesis::treatment``; each row maps column headers to cells."""
    header, *rows = section(stdout)
    columns = re.split(r"\s{2,}", header.strip())
    parsed: dict[str, dict[str, str]] = {}
    for line in rows:
        if not line.strip() or line.startswith("!"):  # the notes below the rows
            break
        if line.startswith(" "):  # -vv: the values of the row above
            continue
        row = dict(zip(columns, re.split(r"\s{2,}", line.strip()), strict=True))
        parsed[f"{row['experiment']}::{row['hypothesis']}::{row['treatment']}"] = row
    return parsed


# The ``summary_rows`` fixture: a run's summary rows by verdict id (see ``parse_summary``).
SummaryRows = Callable[[pytest.RunResult], dict[str, dict[str, str]]]


def verdict_lines(stdout: str) -> list[str]:
    """The ``-rA`` short-summary lines of passed and failed verdicts (they carry the p-value),
    sorted: the same set whatever order the verdicts came in."""
    return sorted(line for line in stdout.splitlines() if re.match(r"(PASSED|FAILED) p=", line))


def verdict_heads(stdout: str) -> list[str]:
    """:func:`verdict_lines` up to the verifier's p-value: pytest cuts the rest at the
    terminal's width, except when ``CI`` is set."""
    return [line.split(",", 1)[0] for line in verdict_lines(stdout)]


def p_cell(row: Mapping[str, str]) -> str:
    """The unadjusted p-value of a summary row (its column may also show the adjusted one)."""
    return next(cell for column, cell in row.items() if column.split()[0] == "p").split()[0]


def same_verdicts_in_every_mode(
    tester: pytest.Pytester,
    modes: Mapping[str, tuple[Sequence[str], Mapping[str, int]]],
    rows: Callable[[str], list[str]],
    *args: str,
) -> tuple[list[str], list[str]]:
    """Run ``pytest --crystallize -rA *args`` once per mode (``{label: (mode's arguments,
    outcomes)}``), check its outcomes and exit code, and that every mode shows the same
    ``rows(stdout)`` and verdict lines as the first; return those of the first mode."""
    shown: dict[str, tuple[list[str], list[str]]] = {}
    for mode, (mode_args, outcomes) in modes.items():
        result = tester.runpytest("--crystallize", "-rA", *args, *mode_args)
        result.assert_outcomes(**outcomes)
        failed = outcomes.get("failed", 0) > 0
        assert result.ret == (pytest.ExitCode.TESTS_FAILED if failed else pytest.ExitCode.OK)
        stdout = result.stdout.str()
        shown[mode] = (rows(stdout), verdict_lines(stdout))
    reference = next(iter(shown.values()))
    for mode, seen in shown.items():
        assert seen == reference, mode
    return reference


def raises_message(exception: type[BaseException], message: str) -> Any:
    """``pytest.raises`` for an ``exception`` whose message contains ``message`` as it is
    (no regular expression)."""
    return pytest.raises(exception, match=re.escape(message))


# --- files and processes --------------------------------------------------------------------


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of ``path`` that contains ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} is not in {path}")


def read_lines(path: Path) -> list[str]:
    """The lines of a log file, none if it was never written."""
    return path.read_text().splitlines() if path.exists() else []


def to_json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def from_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def run_python(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` in a fresh interpreter that imports this checkout, with ``env`` added
    to the environment; it must succeed."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def run_workflow_command(
    command: str, checkout: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """A workflow step's ``run`` command, as GitHub runs it (``bash -eo pipefail``), in the
    local checkout; a step that hangs fails after 5 minutes."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command],
        cwd=checkout,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
