"""Coverage with the step cache: under pytest-cov, cached steps are replayed, not run, so the
plugin warns once (on the process that owns the session) to measure with
``--crystallize-no-cache``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from _support import IN_PROCESS, with_and_without_workers

pytestmark = pytest.mark.usefixtures("private_cache_key")

pytest.importorskip("pytest_cov")  # a test dependency (pyproject's test extra)

NOTE = (
    "crystallize: coverage is measured (pytest-cov), but cached steps are replayed from the "
    "step cache, not executed, so their lines are not measured on a warm run; run coverage "
    "with --crystallize-no-cache (or ini crystallize_no_cache = true)"
)
# pytest-cov measures this folder only, and reports nothing: the test reads the warnings. The
# inner sessions run in a subprocess: pytest-cov started in this process would replace the
# tracer of the coverage that measures this test run.
COVERAGE = ("--cov=.", "--cov-report=")


@with_and_without_workers
def test_coverage_with_the_cache_warns_once(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: Sequence[str]
) -> None:
    write_experiment(experiments={"demo": {"boost": 5.0}}, replicates=2)
    result = ourtester.runpytest_subprocess("--crystallize", *COVERAGE, *dist)
    assert result.parseoutcomes()["warnings"] == 1  # the controller's, not one per worker
    result.stdout.fnmatch_lines(["*warnings summary*", f"*CoverageCacheWarning: {NOTE}"])


def test_no_warning_without_the_cache_or_without_crystallize(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(replicates=3)
    for args in (("--crystallize", "--crystallize-no-cache"), ("--cov-report=term",)):
        result = ourtester.runpytest_subprocess(*args, *COVERAGE, *IN_PROCESS)
        assert "warnings" not in result.parseoutcomes(), args
        result.stdout.no_fnmatch_line("*CoverageCacheWarning*")


def test_warnings_as_errors_make_the_warning_a_usage_error_naming_it(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(replicates=3)
    result = ourtester.runpytest_subprocess("--crystallize", *COVERAGE, *IN_PROCESS, "-W", "error")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {NOTE}"])
