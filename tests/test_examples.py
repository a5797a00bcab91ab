"""The examples in ``examples/`` run as the README says (``pytester_example_dir = "examples"``)."""

from __future__ import annotations

import pytest
from _support import SummaryRows, p_cell

EXAMPLES = ("experiment_tutorial.py", "experiment_bandit.py", "failing_demo.py")


@pytest.fixture
def examples(ourtester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory holding copies of the examples."""
    for name in EXAMPLES:
        ourtester.copy_example(name)
    return ourtester


def judged(examples: pytest.Pytester, *args: str, **outcomes: int) -> pytest.RunResult:
    """Run ``pytest --crystallize *args``; check its outcomes, and that it fails only if a
    verdict did."""
    result = examples.runpytest("--crystallize", *args)
    result.assert_outcomes(**outcomes)
    failed = outcomes.get("failed", 0) > 0
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if failed else pytest.ExitCode.OK)
    return result


def test_the_default_run_judges_the_tutorial_and_the_bandit_and_leaves_out_the_failing_demo(
    examples: pytest.Pytester,
) -> None:
    result = judged(examples, "-rA", passed=6)
    result.stdout.no_fnmatch_line("*failing_demo.py*")
    result.stdout.no_fnmatch_line("*threshold_refactor*")
    result.stdout.fnmatch_lines_random(
        [
            "PASSED p=* experiment_bandit.py::bandit::lower_regret::thompson - *",
            "PASSED p=0 experiment_tutorial.py::basic::order_by_p_value::boost_total - *",
        ]
    )


def test_the_tutorial_verdict_passes_and_flags_its_degenerate_input(
    examples: pytest.Pytester,
) -> None:
    result = judged(examples, "experiment_tutorial.py", passed=3)
    result.stdout.fnmatch_lines(
        [
            "=* crystallize *=",
            "*verdict",
            "basic*order_by_p_value*boost_total*total*12/12*0 -> 30*PASSED !",
            "! basic::order_by_p_value::boost_total: degenerate input: zero variance in both "
            "conditions (every replicate of 'total' gave 0.0 in baseline and 30.0 in "
            "'boost_total')",
        ]
    )
    result.stdout.fnmatch_lines(["*zero variance in both conditions*"])


def test_the_bandit_verdict_passes_with_p_below_alpha(
    examples: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    result = judged(examples, "-rA", "experiment_bandit.py", passed=3)
    row = summary_rows(result)["bandit::lower_regret::thompson"]
    assert (row["metric"], row["n"], row["verdict"]) == ("regret", "30/30", "PASSED")
    baseline_regret, thompson_regret = (float(x) for x in row["means"].split(" -> "))
    assert thompson_regret < baseline_regret
    assert float(p_cell(row)) < 0.05


def test_the_failing_demo_run_explicitly_fails_with_its_p_value(
    examples: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    result = judged(examples, "-rA", "failing_demo.py", passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ threshold_refactor::refactor_is_better::refactor _*",
            "hypothesis 'refactor_is_better', treatment 'refactor' vs baseline on 'accuracy': "
            "paired t-test did not pass (p=* >= alpha=0.05)",
            "  p=*, alpha=0.05, n=20 vs 20, means * vs *, difference -* [[]-*, -*[]], detectable *",
        ]
    )
    result.stdout.fnmatch_lines(
        ["FAILED p=* failing_demo.py::threshold_refactor::refactor_is_better::refactor*"]
    )
    row = summary_rows(result)["threshold_refactor::refactor_is_better::refactor"]
    assert float(p_cell(row)) > 0.05
    assert row["verdict"] == "FAILED"
