"""A verdict sees all its replicates or none: however a replicate stops early, the verdicts say
which replicate and why, and nothing is judged or saved on the replicates that did run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _support import with_and_without_workers

SKIP_ONE = """
    import pytest
    if ctx["condition"] == "boost" and ctx["replicate"] == 3:
        pytest.skip("no GPU on this runner")
"""
SKIP_ALL = """
    import pytest
    pytest.skip("no GPU on this runner")
"""


def stops_with(statement: str) -> str:
    return f"""
    import pytest, sys
    if ctx["condition"] == "boost" and ctx["replicate"] == 3:
        {statement}
"""


@with_and_without_workers
def test_a_step_that_skips_one_replicate_skips_the_verdicts_naming_it(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment(step_code=SKIP_ONE)
    result = ourtester.runpytest("--crystallize", "-rs", *dist)
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes, outcomes
    assert "errors" not in outcomes, outcomes
    result.stdout.fnmatch_lines(
        [
            "*demo::by_p::boost*replicate 3 of condition 'boost' skipped (no GPU on this runner);"
            " no verdict is given on the replicates that ran*",
        ]
    )
    result.stdout.no_fnmatch_line("*PASSED*by_p*")
    assert result.ret == pytest.ExitCode.OK


@with_and_without_workers
def test_every_replicate_skipping_is_an_ordinary_skip(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment(step_code=SKIP_ALL)
    result = ourtester.runpytest("--crystallize", "-rs", *dist)
    outcomes = result.parseoutcomes()
    assert set(outcomes) == {"skipped"}, outcomes
    result.stdout.fnmatch_lines(["SKIPPED*demo::by_p::boost: no GPU on this runner"])


@with_and_without_workers
@pytest.mark.parametrize(
    ("statement", "shown"),
    [
        ('pytest.fail("sensor offline")', "pytest.fail: sensor offline"),
        ('pytest.xfail("known flake")', "pytest.xfail: known flake"),
        ("sys.exit(3)", "sys.exit(3)"),
    ],
    ids=["fail", "xfail", "exit"],
)
def test_a_replicate_stopped_otherwise_makes_the_verdicts_errors_naming_it(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    dist: list[str],
    statement: str,
    shown: str,
) -> None:
    write_experiment(step_code=stops_with(statement))
    result = ourtester.runpytest("--crystallize", "-rE", *dist)
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 2, outcomes  # by_p::boost and by_p::flat
    result.stdout.fnmatch_lines(
        [
            f"*replicate 3 of condition 'boost' stopped ({shown}), so its chunk's other "
            "replicates did not run; no verdict is given on partial data*",
        ]
    )
    assert result.ret != pytest.ExitCode.OK


@with_and_without_workers
def test_save_leaves_out_an_experiment_with_a_skipped_replicate_and_says_so(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment(step_code=SKIP_ONE)
    result = ourtester.runpytest("--crystallize", "--crystallize-save", "main", *dist)
    result.stdout.fnmatch_lines(
        [
            "crystallize: baseline 'main' leaves out demo: not every replicate ran and "
            "succeeded, and a baseline holds whole runs only",
        ]
    )
    # Nothing ran whole, so nothing is written (an earlier baseline of that name would stay).
    assert not (ourtester.path / ".crystallize" / "baselines" / "main.json").exists()


FAIL_FIRST_ATTEMPT = """
    marker = os.path.join(os.environ["ATTEMPTS_DIR"], f"{ctx['condition']}-{ctx['replicate']}")
    if ctx["condition"] == "boost" and ctx["replicate"] == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("flaky sensor")
"""


@with_and_without_workers
def test_a_rerun_chunk_contributes_only_its_last_attempt(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    dist: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATTEMPTS_DIR", str(ourtester.path))
    write_experiment(step_code=FAIL_FIRST_ATTEMPT)
    result = ourtester.runpytest("--crystallize", "--reruns", "1", "-rA", *dist)
    outcomes = result.parseoutcomes()
    assert outcomes.get("rerun") == 1, outcomes
    assert "errors" not in outcomes, outcomes
    result.stdout.fnmatch_lines_random(
        [
            "PASSED*demo::by_p::boost*",
            "FAILED*demo::by_p::flat*",
            "crystallize: --reruns reruns chunks, never verdicts: each verdict is decided once, "
            "on the last attempt of every chunk",
        ]
    )


HANG = """
    import time
    if ctx["condition"] == "boost" and ctx["replicate"] == 3:
        time.sleep(30)
"""


@with_and_without_workers
def test_a_replicate_that_times_out_makes_the_verdicts_errors_naming_it(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    write_experiment(step_code=HANG)
    result = ourtester.runpytest("--crystallize", "--timeout", "3", "-rE", *dist)
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 2, outcomes
    result.stdout.fnmatch_lines(
        ["*replicate 3 of condition 'boost' stopped (pytest.fail: Timeout*), so its chunk's*"]
    )


GAPS = """
    if ctx["condition"] == "boost" and ctx["replicate"] == 2:
        return value + delta, {"other": 1.0}
    if ctx["condition"] == "flat" and ctx["replicate"] == 1:
        return value + delta, {"score": "0.5"}
"""


@with_and_without_workers
def test_a_replicate_without_a_real_value_of_the_judged_metric_makes_its_verdict_an_error(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path], dist: list[str]
) -> None:
    """As in scripts: no verdict on the replicates that did record the metric (boost misses
    it in one replicate, flat records a string); every chunk still passes."""
    write_experiment(step_code=GAPS)
    result = ourtester.runpytest("--crystallize", *dist)
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 2, outcomes
    assert "failed" not in outcomes, outcomes
    result.stdout.fnmatch_lines_random(
        [
            "replicate 2 of condition 'boost' recorded no value of metric 'score', which"
            " hypothesis 'by_p' judges, so no verdict is given on the other replicates*",
            "metric 'score' of condition 'flat', replicate 1 is '0.5' (str), not a real number,"
            " so hypothesis 'by_p' cannot judge it*",
            "ERROR *demo::by_p::boost*",
            "ERROR *demo::by_p::flat*",
        ]
    )
