"""Verdicts are test results: PASSED/FAILED with p-values, a summary table, JUnit properties."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from _support import SummaryRows, chunks, in_every_mode, p_cell


@in_every_mode
def test_a_passing_and_a_failing_verdict_show_their_p_values(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "-rA", "-v", *dist)
    result.assert_outcomes(passed=3 * chunks(dist, 3) + 1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Verbose verdict lines carry the p-value: boost differs by 5 standard deviations, flat
    # reproduces the baseline exactly (common random numbers), so its p-value is 1.
    result.stdout.fnmatch_lines_random(
        [
            "*experiment_demo.py::demo::by_p::boost PASSED p=*e-0*",
            "*experiment_demo.py::demo::by_p::flat FAILED p=1 *",
        ]
    )
    # ... and so do the -rA short summary lines, with the verifier's numbers after the id.
    result.stdout.fnmatch_lines_random(
        [
            "PASSED p=*e-0* experiment_demo.py::demo::by_p::boost - welch: p=*",
            "FAILED p=1 experiment_demo.py::demo::by_p::flat - hypothesis 'by_p'*",
        ]
    )


@in_every_mode
def test_the_crystallize_section_has_one_row_per_verdict_with_its_numbers(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    summary_rows: SummaryRows,
    dist: list[str],
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", *dist)
    result.stdout.fnmatch_lines(
        [
            "=* crystallize *=",
            "experiment*hypothesis*treatment*metric*n*means*p*verdict",
            "demo*by_p*boost*score*8/8*->*e-0*PASSED",
            "demo*by_p*flat*score*8/8*->*1*FAILED",
        ]
    )
    rows = summary_rows(result)
    assert list(rows) == ["demo::by_p::boost", "demo::by_p::flat"]
    boost, flat = rows["demo::by_p::boost"], rows["demo::by_p::flat"]
    for row in (boost, flat):
        assert (row["metric"], row["n"]) == ("score", "8/8")
    base, treated = (float(x) for x in boost["means"].split(" -> "))
    assert treated - base == pytest.approx(5.0, abs=0.01)
    assert float(p_cell(boost)) < 1e-3
    assert boost["verdict"] == "PASSED"
    flat_base, flat_treated = flat["means"].split(" -> ")
    assert flat_base == flat_treated
    assert (p_cell(flat), flat["verdict"]) == ("1", "FAILED")


def test_a_failed_verdict_states_the_verifier_p_value_alpha_and_what_it_returned(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*= FAILURES =*",
            "*_ demo::by_p::flat _*",
            "hypothesis 'by_p', treatment 'flat' vs baseline on 'score': *welch did not pass"
            " (significant=False)",
            "  p=1*, alpha=0.05, n=8 vs 8, means * vs *",
            "  the verifier returned: {'p_value': 1.0, 'significant': False}",
        ]
    )


def test_a_verifier_result_without_passed_or_significant_is_an_error_saying_so(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(returns='{"p_value": p_value}')
    result = ourtester.runpytest("--crystallize", "-rA")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*welch could not decide (the result of verifier 'welch' has neither 'passed' nor"
            " 'significant' (its keys: 'p_value'); return one of them so the verdict can be"
            " decided)",
        ]
    )
    result.stdout.fnmatch_lines_random(
        [
            "ERROR *experiment_demo.py::demo::by_p::boost*",
            "ERROR *experiment_demo.py::demo::by_p::flat*",
        ]
    )


def test_a_verifier_result_with_passed_is_decided_by_it_not_by_significant(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    # `significant` says the opposite of `passed`; `passed` must win.
    write_experiment(
        returns='{"p_value": p_value, "significant": p_value >= alpha, "passed": p_value < alpha}'
    )
    result = ourtester.runpytest("--crystallize", "-rA")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED p=*e-0* experiment_demo.py::demo::by_p::boost - *",
            "FAILED p=1 experiment_demo.py::demo::by_p::flat - *",
            "*welch did not pass (passed=False)",
        ]
    )


def test_a_nan_p_value_fails_the_verdict_with_a_message_saying_nan(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(
        experiments={"demo": {"boost": 5.0}},
        returns='{"p_value": float("nan"), "significant": True}',
    )
    result = ourtester.runpytest("--crystallize", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*welch did not pass (the p-value is *, so nothing can be concluded)",
            "FAILED p=n/a experiment_demo.py::demo::by_p::boost - *",
        ]
    )
    assert re.search(r"the p-value is nan\b", result.stdout.str(), re.IGNORECASE)


def test_the_exit_code_is_zero_when_every_verdict_passes(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(experiments={"demo": {"boost": 5.0}})
    result = ourtester.runpytest("--crystallize", "-rA")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["PASSED p=*e-0* experiment_demo.py::demo::by_p::boost - *"])


@in_every_mode
def test_junit_xml_has_a_testcase_per_verdict_with_the_numbers_as_properties(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "--junitxml=out.xml", *dist)
    result.assert_outcomes(passed=3 * chunks(dist, 3) + 1, failed=1)
    root = ET.parse(ourtester.path / "out.xml").getroot()
    verdicts = {
        case.get("name"): case
        for case in root.iter("testcase")
        if case.get("classname") == "experiment_demo.demo.by_p"
    }
    assert sorted(verdicts) == ["boost", "flat"]
    props = {
        name: {p.get("name"): p.get("value") for p in case.iter("property")}
        for name, case in verdicts.items()
    }
    for name, outcome in (("boost", "passed"), ("flat", "failed")):
        assert props[name]["crystallize_outcome"] == outcome
        assert props[name]["verifier"] == "welch"
        assert props[name]["metrics"] == "score"
        assert (props[name]["n_baseline"], props[name]["n_treatment"]) == ("8", "8")
        assert float(props[name]["alpha"]) == 0.05
    assert float(props["boost"]["p_value"]) < 1e-3
    assert float(props["flat"]["p_value"]) == 1.0
    assert float(props["boost"]["mean_treatment"]) - float(
        props["boost"]["mean_baseline"]
    ) == pytest.approx(5.0)
    assert verdicts["boost"].find("failure") is None
    failure = verdicts["flat"].find("failure")
    assert failure is not None
    # CI annotations show only the message: it must carry the numbers too.
    message = failure.get("message", "")
    assert re.search(r"\bp=1\b.*, alpha=0\.05, n=8 vs 8", message), message
