"""Selection keeps experiments whole, the family is the definition, pytest marks apply.

Verdicts are collected items: ``-k``, ``-m``, node ids, ``--lf``, ``--sw`` and marks select
them, and the chunks a selected verdict needs (the baseline's included) run with it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from _support import (
    TWO_WORKERS,
    chunks,
    experiment_source,
    in_every_mode,
    with_and_without_workers,
)

# 8 replicates of 3 conditions: one chunk per condition in one process, 3 with two workers.
PER_CONDITION = 3


def marked_source(*marks: str) -> str:
    """The demo experiment (boost passes, flat fails) with ``.marks(...)`` on its builder."""
    source = experiment_source().replace(
        "    .replicates(8)", f"    .marks({', '.join(marks)})\n    .replicates(8)"
    )
    return source.replace("import os\n", "import os\n\nimport pytest\n", 1)


# --- selecting verdicts -------------------------------------------------------------------


@in_every_mode
@pytest.mark.parametrize(
    "target", ["experiment_demo.py::demo::by_p::flat", "experiment_demo.py::demo::flat"]
)
def test_a_verdict_or_treatment_node_id_runs_the_baseline_too_and_reports_only_it(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    dist: list[str],
    target: str,
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "-rA", target, *dist)
    result.assert_outcomes(passed=2 * chunks(dist, PER_CONDITION), failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED experiment_demo.py::demo::baseline::chunk-0",
            "PASSED experiment_demo.py::demo::flat::chunk-0",
            "FAILED p=1 experiment_demo.py::demo::by_p::flat - *",
        ]
    )
    result.stdout.no_fnmatch_line("*boost*")


@with_and_without_workers
def test_the_family_is_the_definition_whatever_is_selected(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment()
    whole = ourtester.runpytest("--crystallize", "--crystallize-json", "all.json", *dist)
    part = ourtester.runpytest(
        "--crystallize", "-rA", "-k", "not flat", "--crystallize-json", "part.json", *dist
    )
    part.assert_outcomes(passed=2 * chunks(dist, PER_CONDITION) + 1)

    def boost(report: str) -> dict[str, object]:
        document = json.loads((ourtester.path / report).read_text())
        verdicts = [v for e in document["experiments"] for v in e["verdicts"]]
        return next(v for v in verdicts if v["treatment"] == "boost")

    # flat did not run, yet it is one of the two comparisons of the Holm family: boost's
    # adjusted p-value is the whole run's, not boost's alone.
    assert boost("part.json")["pvalue_adjusted"] == boost("all.json")["pvalue_adjusted"]
    assert boost("part.json")["pvalue_adjusted"] == pytest.approx(
        2 * boost("part.json")["pvalue"]  # type: ignore[operator]
    )
    part.stdout.fnmatch_lines(
        [
            "! demo::by_p::boost: 1 of the family's 2 comparisons did not run in this session "
            "(not selected); each counts as p = 1 in the holm correction, so the adjusted "
            "p-value is at least the whole family's"
        ]
    )
    whole.stdout.no_fnmatch_line("*did not run in this session*")


def test_stepwise_resumes_at_the_failed_verdict_with_the_chunks_it_needs(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment()
    first = ourtester.runpytest("--crystallize", "--sw", "-p", "no:xdist")
    first.assert_outcomes(passed=4, failed=1)
    again = ourtester.runpytest("--crystallize", "--sw", "-rA", "-p", "no:xdist")
    # boost's verdict precedes flat's: it is not selected again; flat's chunks run.
    again.assert_outcomes(passed=2, failed=1)
    again.stdout.fnmatch_lines(["FAILED p=1 experiment_demo.py::demo::by_p::flat - *"])
    again.stdout.no_fnmatch_line("*by_p::boost*")


@with_and_without_workers
@pytest.mark.parametrize(
    ("select", "ret"),
    [
        (["experiment_demo.py::demo::baseline"], pytest.ExitCode.NO_TESTS_COLLECTED),
        (["-k", "no_such_thing"], pytest.ExitCode.NO_TESTS_COLLECTED),
    ],
    ids=["baseline-only", "nothing-matches"],
)
def test_a_session_that_judges_nothing_exits_5_never_0(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    dist: list[str],
    select: list[str],
    ret: pytest.ExitCode,
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", *select, *dist)
    assert result.ret == ret
    result.stdout.no_fnmatch_line("*by_p*")
    if "-k" not in select:
        result.stdout.fnmatch_lines(
            ["crystallize: nothing was judged: chunks ran, but no verdict was selected *"]
        )


# --- marks --------------------------------------------------------------------------------


def two_marked(demo_mark: str, other_mark: str = "", module_mark: str = "") -> str:
    """Experiments demo and other (boost passes, flat fails in each), demo with
    ``.marks(demo_mark)``, other with ``.marks(other_mark)``, the module with ``pytestmark``."""
    source = experiment_source({name: {"boost": 5.0, "flat": 0.0} for name in ("demo", "other")})
    source = source.replace("import os\n", "import os\n\nimport pytest\n", 1)
    for name, mark in (("demo", demo_mark), ("other", other_mark)):
        if mark:
            source = source.replace(f'builder("{name}")', f'builder("{name}")\n    .marks({mark})')
    return source + (f"\npytestmark = [{module_mark}]\n" if module_mark else "")


@with_and_without_workers
def test_xfail_turns_a_failing_verdict_into_xfail_and_a_passing_one_into_xpass(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    # demo: the builder's strict mark, the closest, wins; other: the module's pytestmark.
    ourtester.makepyfile(
        experiment_demo=two_marked(
            'pytest.mark.xfail(reason="known regression", strict=True)',
            module_mark='pytest.mark.xfail(reason="module regression")',
        )
    )
    result = ourtester.runpytest("--crystallize", "-rA", *dist)
    # The chunks are not expected to fail: they run and pass as usual. An unexpected pass
    # fails the gate when the mark is strict.
    passed = 6 * chunks(dist, PER_CONDITION)
    result.assert_outcomes(passed=passed, failed=1, xfailed=2, xpassed=1)
    result.stdout.fnmatch_lines(
        ["_* demo::by_p::boost _*", "[[]XPASS(strict)[]] known regression", "welch: p=*"]
    )
    result.stdout.fnmatch_lines_random(
        [
            "XFAIL p=1 experiment_demo.py::demo::by_p::flat - known regression",
            "XFAIL p=1 experiment_demo.py::other::by_p::flat - module regression",
            "XPASS p=* experiment_demo.py::other::by_p::boost - module regression",
        ]
    )


@with_and_without_workers
def test_a_skip_mark_skips_the_verdicts_without_running_a_chunk(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(
        experiment_demo=two_marked(
            'pytest.mark.skip(reason="no GPU")', 'pytest.mark.skipif(True, reason="no TPU")'
        )
    )
    result = ourtester.runpytest("--crystallize", "-rs", *dist)
    result.assert_outcomes(skipped=4)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]2[]] experiment_demo.py*: no GPU",
            "SKIPPED [[]2[]] experiment_demo.py*: no TPU",
        ]
    )
    result.stdout.no_fnmatch_line("*chunk-*")


@with_and_without_workers
def test_custom_marks_select_with_m(ourtester: pytest.Pytester, dist: list[str]) -> None:
    ourtester.makeini("[pytest]\nmarkers =\n    slow: a slow experiment\n")
    ourtester.makepyfile(experiment_demo=marked_source("pytest.mark.slow"))
    ourtester.makepyfile(test_fast="def test_quick():\n    pass\n")
    fast = ourtester.runpytest("--crystallize", "-m", "not slow", "--collect-only", "-q")
    fast.stdout.fnmatch_lines(["test_fast.py::test_quick", "", "1/6 tests collected (5 *"])
    slow = ourtester.runpytest("--crystallize", "-m", "slow", *dist)
    slow.assert_outcomes(passed=3 * chunks(dist, PER_CONDITION) + 1, failed=1)


@with_and_without_workers
def test_a_skip_mark_a_conftest_adds_to_chunks_skips_their_verdicts(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment()
    ourtester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if "::chunk-" in item.nodeid:
                    item.add_marker(pytest.mark.skip(reason="no GPU on this runner"))
        """
    )
    result = ourtester.runpytest("--crystallize", "-rs", *dist)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(skipped=3 * chunks(dist, PER_CONDITION) + 2)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] experiment_demo.py:*: demo::by_p::boost: no GPU on this runner",
            "SKIPPED [[]1[]] experiment_demo.py:*: demo::by_p::flat: no GPU on this runner",
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_every_item_and_verdict_reports_the_file_and_line_of_its_experiment(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    path = write_experiment()
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if ".build()" in text)
    ourtester.makeconftest(
        """
        def pytest_collection_finish(session):
            for item in session.items:
                print("LOCATION", item.nodeid, item.location[0], item.location[1])
        """
    )
    junit = ["--junitxml=j.xml", "-o", "junit_family=xunit1"]  # xunit2 has no lines
    result = ourtester.runpytest("--crystallize", "-s", "-p", "no:xdist", *junit)
    found = re.findall(r"^LOCATION (\S+) (\S+) (\d+)$", result.stdout.str(), re.MULTILINE)
    assert len(found) == 3  # the chunks; verdicts are reported, not run
    assert {(f, int(n)) for _, f, n in found} == {("experiment_demo.py", line - 1)}
    cases = ET.parse(ourtester.path / "j.xml").getroot().iter("testcase")
    lines = {case.get("name"): case.get("line") for case in cases}
    assert lines["boost"] == lines["chunk-0"] == str(line - 1)


@with_and_without_workers
def test_a_name_with_a_node_id_separator_is_a_collection_error_naming_it(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    source = experiment_source().replace('builder("demo")', 'builder("model::v2")')
    ourtester.makepyfile(experiment_demo=source)
    result = ourtester.runpytest("--crystallize", *dist)
    # A collection error: pytest stops (2); under xdist the workers report it (1).
    assert result.ret in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.TESTS_FAILED)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*experiment name may not *, got 'model::v2', which contains '::'; rename it*"]
    )


@pytest.mark.parametrize("dist", [["-p", "no:xdist"], TWO_WORKERS], ids=["no-xdist", "n2"])
def test_progress_with_pytest_sugar_ends_at_100_percent(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    pytest.importorskip("pytest_sugar")
    write_experiment()
    # In a subprocess: --force-sugar switches pytest-sugar on for the rest of a process.
    result = ourtester.runpytest_subprocess("--crystallize", "--force-sugar", *dist)
    progress = [line for line in result.outlines if line.startswith(" experiment_demo.py ")]
    shown = [int(p) for line in progress for p in re.findall(r"(\d+)%", line)]
    assert shown, result.stdout.str()
    assert max(shown) == 100
