"""``Result.verdicts``, ``Result.summary()`` and ``print_summary()``: a script run gets the
verdicts and the table that ``pytest --crystallize`` prints for the same experiment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from _support import (
    NO_XDIST,
    experiment_source,
    parse_summary,
    raises_message,
    run_python,
    section,
)

from pytest_crystallize import Experiment, HypothesisError, data_source, pipeline_step
from pytest_crystallize._engine import judging

HEADER = (
    "experiment  hypothesis  treatment  metric  n    means               change [95% CI]  "
    "p (adj)              alpha  verdict"
)
# "boost" (delta 5) passes whatever the seeds; "flat" (delta 0) reproduces the baseline: p = 1.
DEMO = experiment_source(replicates=5)
FAILING = experiment_source(
    replicates=3,
    step_code="if ctx['condition'] == 'baseline' and ctx['replicate'] == 1: raise ValueError('x')",
)


def rows_of(summary: str) -> dict[str, dict[str, str]]:
    """The rows of a ``summary()``, parsed as the pytest terminal section is."""
    return parse_summary(f"{'=' * 10} crystallize {'=' * 10}\n{summary}\n{'=' * 30}")


@pytest.mark.usefixtures("private_cache_key")
def test_a_script_run_summarises_its_verdicts_as_the_pytest_run_does(
    ourtester: pytest.Pytester,
    load: Callable[[str, str], ModuleType],
    summary_rows: Callable[[pytest.RunResult], dict[str, dict[str, str]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ourtester.makepyfile(experiment_demo=DEMO)
    session = ourtester.runpytest("--crystallize", *NO_XDIST)
    session.assert_outcomes(passed=4, failed=1)  # three chunks, boost passes, flat fails

    result = load("script_demo", DEMO).demo.run()
    summary = result.summary()
    header, *lines = summary.splitlines()
    assert header.split() == HEADER.split()
    assert len(lines) == 2
    assert section(session.stdout.str()) == summary.splitlines()  # the same lines
    rows = rows_of(summary)
    assert rows == summary_rows(session)
    assert [(r["treatment"], r["alpha"], r["verdict"]) for r in rows.values()] == [
        ("boost", "0.05", "PASSED"),
        ("flat", "0.05", "FAILED"),
    ]
    assert [v.outcome for v in result.verdicts] == ["passed", "failed"]
    assert "did not pass" in result.verdicts[1].message
    assert result.to_dict()["verdicts"] == [v.to_json() for v in result.verdicts]

    capsys.readouterr()
    result.print_summary()
    assert capsys.readouterr().out == summary + "\n"


@pytest.mark.usefixtures("in_tmp_path")
def test_a_plain_script_gets_its_verdicts_through_the_public_api_alone(
    tmp_path: Path, load: Callable[[str, str], ModuleType]
) -> None:
    # A fresh interpreter, where nothing but the script's own imports loads the judge.
    script = tmp_path / "script.py"
    script.write_text(DEMO + "\ndemo.run().print_summary()\n")
    printed = run_python(str(script), cwd=tmp_path).stdout
    assert printed == load("same_demo", DEMO).demo.run().summary() + "\n"


@pytest.mark.usefixtures("in_tmp_path")
def test_a_failed_replicate_gives_error_rows(load: Callable[[str, str], ModuleType]) -> None:
    result = load("failing_demo", FAILING).demo.run()
    rows = rows_of(result.summary())
    assert [(r["treatment"], r["verdict"]) for r in rows.values()] == [
        ("boost", "ERROR"),
        ("flat", "ERROR"),
    ]
    assert "1 of 3 replicates of condition 'baseline' failed" in result.verdicts[0].message


@pytest.mark.usefixtures("in_tmp_path")
def test_a_hypothesis_that_cannot_be_evaluated_leaves_error_verdicts_on_the_error(
    load: Callable[[str, str], ModuleType],
) -> None:
    source = DEMO.replace('return result["p_value"]', 'return result["missing"]')
    with pytest.raises(HypothesisError) as caught:
        load("broken_demo", source).demo.run()
    result = caught.value.result
    assert result is not None
    assert [(v.treatment, v.outcome) for v in result.verdicts] == [
        ("boost", "error"),
        ("flat", "error"),
    ]
    assert "ranker of hypothesis 'by_p' raised KeyError" in result.verdicts[0].message


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step
def total(data, ctx):
    return data, {"total": sum(data)}


@pytest.mark.usefixtures("in_tmp_path")
def test_a_run_without_hypotheses_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    result = Experiment.builder("plain").datasource(numbers()).add_step(total()).build().run()
    assert result.verdicts == ()
    assert result.summary() == "no hypotheses"
    result.print_summary()
    assert capsys.readouterr().out == "no hypotheses\n"


@pytest.mark.usefixtures("in_tmp_path")
def test_without_a_judge_a_run_has_no_verdicts_and_its_summary_says_why(
    load: Callable[[str, str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(judging.SLOT, "judge", None)
    result = load("unjudged_demo", DEMO).demo.run()
    assert result.verdicts == ()
    assert result.summary() == (
        "no verdicts: no judge is loaded (import Experiment from pytest_crystallize to load it)"
    )


def test_register_judge_refuses_what_it_cannot_call() -> None:
    with raises_message(TypeError, "takes a function fn(experiment, result) -> tuple of"):
        judging.register_judge("judge")  # type: ignore[arg-type]
    with raises_message(TypeError, "got 'judge'"):
        judging.register_judge("judge")  # type: ignore[arg-type]
