"""Shared fixtures for the plugin's pytester tests: an isolated ini and a small experiment file.

This module loads no plugins; the root ``conftest.py`` enables ``pytester``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy  # noqa: F401
import pytest
import scipy.stats  # noqa: F401

import pytest_crystallize

# Inner runs are in-process, and pytester drops every module a run imported when it ends.
# numpy's C extension cannot be imported twice in one process, and a plugin module imported
# afresh by a later run would not be the one its package attribute points to (`from . import
# _collect` would see the first run's copy, with other stash keys). So import numpy, scipy and
# every module of the package once, before any run.
for _module in pkgutil.walk_packages(pytest_crystallize.__path__, "pytest_crystallize."):
    importlib.import_module(_module.name)

# Plugins installed on a developer machine that are not project dependencies: keep them out of
# the inner runs (blocking a plugin that is not installed is a no-op).
INI = """\
[pytest]
addopts = -p no:benchmark -p no:hypothesispytest
{extra}
"""

_HEADER = """\
from __future__ import annotations

import os

from scipy.stats import ttest_ind

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


@verifier
def welch(baseline, treatment, alpha=0.05):
    result = ttest_ind(treatment["score"], baseline["score"], equal_var=False)
    p_value = float(result.pvalue)
    return {returns}


@hypothesis(verifier=welch(), metrics="score")
def by_p(result):
    return result["p_value"]
"""

_EXPERIMENT = """

{name} = (
    Experiment.builder("{name}")
    .datasource(noise())
    .add_step(shift())
    .treatments([{treatments}])
    .hypotheses([by_p])
    .replicates({replicates})
    .build()
)
"""

# What the verifier returns by default: a tutorial-style result.
SIGNIFICANT = '{"p_value": p_value, "significant": p_value < alpha}'

# Replicate i gets the same seed in every condition, so "flat" (delta 0) reproduces the
# baseline exactly (p = 1, a failed verdict) and "boost" (delta 5, five standard deviations)
# gives p < 1e-4 whatever the seeds, which prints in exponent form ("p=1.2e-05").
DEFAULT_EXPERIMENTS: Mapping[str, Mapping[str, float]] = {"demo": {"boost": 5.0, "flat": 0.0}}


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
    parts = [_HEADER.format(step_code=body, returns=returns)]
    for name, deltas in experiments.items():
        listed = ", ".join(f"treatment({t!r}, {{'delta': {d!r}}})" for t, d in deltas.items())
        parts.append(_EXPERIMENT.format(name=name, treatments=listed, replicates=replicates))
    return "".join(parts)


@pytest.fixture
def write_ini(pytester: pytest.Pytester) -> Callable[[str], Path]:
    """``write_ini("crystallize = true")`` (re)writes the ini with extra lines."""

    def write(extra: str = "") -> Path:
        return pytester.makeini(INI.format(extra=extra))

    return write


@pytest.fixture
def ourtester(pytester: pytest.Pytester, write_ini: Callable[[str], Path]) -> pytest.Pytester:
    """A pytester directory with its own ini, so no outer configuration leaks in."""
    write_ini("")
    return pytester


@pytest.fixture
def write_experiment(ourtester: pytest.Pytester) -> Callable[..., Path]:
    """``write_experiment(name="experiment_demo", **source_options)`` writes an experiment file."""

    def write(
        name: str = "experiment_demo",
        experiments: Mapping[str, Mapping[str, float]] = DEFAULT_EXPERIMENTS,
        **options: object,
    ) -> Path:
        source = experiment_source(experiments, **options)  # type: ignore[arg-type]
        return ourtester.makepyfile(**{name: source})

    return write


def parse_summary(stdout: str) -> dict[str, dict[str, str]]:
    """The rows of the ``crystallize`` terminal section, keyed by
    ``experiment::hypothesis::treatment``; each row maps column headers to cells."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"=+ crystallize =+", line))
    header = re.split(r"\s{2,}", lines[start + 1].strip())
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 2 :]:
        if not line.strip() or line.startswith(("=", "!")):
            break
        row = dict(zip(header, re.split(r"\s{2,}", line.strip()), strict=True))
        rows[f"{row['experiment']}::{row['hypothesis']}::{row['treatment']}"] = row
    return rows


@pytest.fixture
def summary_rows() -> Callable[[pytest.RunResult], dict[str, dict[str, str]]]:
    """``summary_rows(result)``: the rows of the run's ``crystallize`` section by verdict id."""
    return lambda result: parse_summary(result.stdout.str())
