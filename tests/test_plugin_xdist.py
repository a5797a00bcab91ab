"""xdist: the same verdicts and p-values however chunks are spread; a dead worker is contained."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _support import (
    IN_PROCESS,
    NO_XDIST,
    TWO_WORKERS,
    SummaryRows,
    same_verdicts_in_every_mode,
    section,
)


def test_every_way_of_distributing_gives_the_same_verdicts_and_p_values(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_experiment(replicates=12)
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "2")  # -n auto, whatever the machine
    # 3 conditions: one chunk each in one process, 3 each with two workers; and 2 verdicts.
    single, workers = {"passed": 1 * 3 + 1, "failed": 1}, {"passed": 3 * 3 + 1, "failed": 1}
    modes = {
        "-n 0": (IN_PROCESS, single),
        "-p no:xdist": (NO_XDIST, single),
        "-n 2": (TWO_WORKERS, workers),  # --dist load, the default with -n
        "-n 2 --dist worksteal": ([*TWO_WORKERS, "--dist", "worksteal"], workers),
        "-n auto": (["-n", "auto"], workers),
    }
    rows, verdicts = same_verdicts_in_every_mode(ourtester, modes, section)
    assert len(rows) == 3  # the header and one row per verdict
    assert rows[1].split()[:3] == ["demo", "by_p", "boost"]
    assert rows[1].endswith("PASSED")
    assert rows[2].endswith("FAILED")
    failed, passed = verdicts
    assert failed.startswith("FAILED p=1 experiment_demo.py::demo::by_p::flat - ")
    assert passed.startswith("PASSED p=")
    assert " experiment_demo.py::demo::by_p::boost - welch: p=" in passed
    assert float(passed.split()[1].removeprefix("p=")) < 1e-3


def test_a_worker_that_dies_in_a_chunk_gives_that_experiment_an_error_verdict_naming_it(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    summary_rows: SummaryRows,
) -> None:
    write_experiment(
        experiments={"demo": {"boost": 5.0}, "steady": {"lift": 5.0}},
        step_code="""
            if ctx["condition"] == "boost" and ctx["replicate"] == 1:
                os._exit(1)
        """,
    )
    result = ourtester.runpytest("--crystallize", "-rA", *TWO_WORKERS)
    # 2 workers, 2 conditions, 8 replicates: 4 chunks of 2 per condition, so replicate 1 is in
    # boost::chunk-0. The crashed chunk fails; the 15 other chunks and steady's verdict pass.
    result.assert_outcomes(passed=16, failed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [
            "*worker 'gw*' crashed while running 'experiment_demo.py::demo::boost::chunk-0'*",
            "FAILED experiment_demo.py::demo::boost::chunk-0*",
            "*_ ERROR at setup of demo::by_p::boost _*",
            "experiment_demo.py::demo::boost::chunk-0 did not finish: worker 'gw*' crashed while"
            " running 'experiment_demo.py::demo::boost::chunk-0'; no verdict is given on partial"
            " data",
            "ERROR experiment_demo.py::demo::by_p::boost*",
            "PASSED p=*e-0* experiment_demo.py::steady::by_p::lift - welch: p=*",
        ]
    )
    # One row per verdict (in the order experiments were judged, which xdist varies).
    rows = summary_rows(result)
    assert sorted(rows) == ["demo::by_p::boost", "steady::by_p::lift"]
    demo, steady = rows["demo::by_p::boost"], rows["steady::by_p::lift"]
    assert (demo["n"], demo["means"], demo["verdict"]) == ("-", "-", "ERROR")
    assert (steady["metric"], steady["n"], steady["verdict"]) == ("score", "8/8", "PASSED")
