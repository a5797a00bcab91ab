"""The session's alpha (``crystallize_alpha``) and a quick look (``--crystallize-replicates``).

Every verifier not given an alpha of its own decides at the session's alpha; one given
``alpha=`` keeps it. A quick look with fewer replicates than a verifier can judge runs every
step and skips the verdicts, saying how many replicates would do.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import pytest
from _support import IN_PROCESS, INI, TWO_WORKERS, SummaryRows, with_and_without_workers

from pytest_crystallize import (
    CrystallizeUsageError,
    Experiment,
    ExperimentDefinitionError,
    Hypothesis,
    data_source,
    hypothesis,
    pipeline_step,
    stats,
    treatment,
)
from pytest_crystallize._engine.hypotheses import with_alpha
from pytest_crystallize._harness.files import experiments_in

pytestmark = pytest.mark.usefixtures("private_cache_key")

# Replicate r of the baseline scores 10 + r; the treatment adds DIFFS[r]: a paired t-test of
# these differences gives p = 0.0238, a pass at 0.05 and a failure at 0.01.
ALPHA_FILE = """
from scipy.stats import ttest_rel

from pytest_crystallize import (
    Experiment, data_source, hypothesis, pipeline_step, stats, treatment, verifier,
)

DIFFS = (1.0, 2.5, 0.4, 1.9, 0.9)


@data_source
def level(ctx):
    return 10.0 + ctx["replicate"]


@pipeline_step()
def shift(value, ctx, *, lift=0.0):
    return value, {"score": value + lift * DIFFS[ctx["replicate"] % 5]}


@verifier
def paired(baseline, treatment, alpha=0.05):
    p = float(ttest_rel(treatment["score"], baseline["score"]).pvalue)
    return {"p_value": p, "significant": p < alpha}


@hypothesis(verifier=stats.paired_t_test(), metrics="score")
def builtin(result):
    return result["p_value"]


@hypothesis(verifier=paired(), metrics="score")
def mine(result):
    return result["p_value"]


@hypothesis(verifier=stats.paired_t_test(alpha=0.1), metrics="score")
def explicit(result):
    return result["p_value"]


alpha = (
    Experiment.builder("alpha")
    .datasource(level())
    .add_step(shift())
    .treatments([treatment("lifted", {"lift": 1.0})])
    .hypotheses([builtin, mine, explicit])
    .correction("none")
    .replicates(5)
    .build()
)
"""


def _alpha_rows(result: pytest.RunResult, summary_rows: SummaryRows) -> dict[str, tuple[str, ...]]:
    return {
        key.split("::")[1]: (row["alpha"], row["verdict"])
        for key, row in summary_rows(result).items()
    }


@with_and_without_workers
def test_the_session_alpha_decides_every_verifier_without_an_alpha_of_its_own(
    ourtester: pytest.Pytester,
    write_ini: Callable[[str], Path],
    summary_rows: SummaryRows,
    dist: Sequence[str],
) -> None:
    ourtester.makepyfile(experiment_alpha=ALPHA_FILE)
    if list(dist) == IN_PROCESS:  # the ini alone
        write_ini("crystallize_alpha = 0.01")
        result = ourtester.runpytest("--crystallize", *dist)
    else:  # the command line wins over the ini (0.2 would pass them all)
        write_ini("crystallize_alpha = 0.2")
        result = ourtester.runpytest("--crystallize", "--crystallize-alpha", "0.01", *dist)
    assert result.parseoutcomes()["failed"] == 2  # the chunks and "explicit" pass
    result.stdout.fnmatch_lines(
        [
            "*hypothesis 'builtin', treatment 'lifted' vs baseline on 'score': paired t-test "
            "did not pass (p=0.0238 >= alpha=0.01)",
            "*hypothesis 'mine', treatment 'lifted' *: paired did not pass (significant=False)",
            "  p=0.02383*, alpha=0.01, n=5 vs 5*",
        ]
    )
    assert _alpha_rows(result, summary_rows) == {
        "builtin": ("0.01", "FAILED"),
        "mine": ("0.01", "FAILED"),
        "explicit": ("0.1", "PASSED"),  # alpha=0.1 in the file is kept
    }


@pytest.mark.parametrize(
    ("filename", "section"),
    [("pyproject.toml", "[tool.pytest.ini_options]"), ("setup.cfg", "[tool:pytest]")],
)
def test_the_session_alpha_is_read_from_pyproject_and_setup_cfg(
    ourtester: pytest.Pytester, summary_rows: SummaryRows, filename: str, section: str
) -> None:
    (ourtester.path / "tox.ini").unlink()  # write_ini's
    toml = filename.endswith(".toml")
    addopts = INI.splitlines()[1].split(" = ")[1]
    lines = [section, f'addopts = "{addopts}"' if toml else f"addopts = {addopts}"]
    lines.append('crystallize_alpha = "0.01"' if toml else "crystallize_alpha = 0.01")
    (ourtester.path / filename).write_text("\n".join(lines) + "\n")
    ourtester.makepyfile(experiment_alpha=ALPHA_FILE)
    result = ourtester.runpytest("--crystallize", *IN_PROCESS)
    result.stdout.fnmatch_lines([f"configfile: {filename}"])
    assert _alpha_rows(result, summary_rows)["builtin"] == ("0.01", "FAILED")


@hypothesis(verifier=stats.equivalent(margin=1.0), metrics="score")
def same(result: object) -> float:
    return 0.0


@hypothesis(verifier=stats.auto(), metrics="score")
def better(result: object) -> float:
    return 0.0


@hypothesis(verifier=stats.auto(alpha=0.1), metrics="score")
def explicit(result: object) -> float:
    return 0.0


@data_source
def one(ctx: object) -> float:
    return 1.0


@pipeline_step()
def keep(value: float) -> tuple[float, dict[str, float]]:
    return value, {"score": value}


def _module_with(hyp: Hypothesis, replicates: int) -> ModuleType:
    module = ModuleType("experiment_gate")
    module.gate = (  # type: ignore[attr-defined]
        Experiment.builder("gate")
        .datasource(one())
        .add_step(keep())
        .treatments([treatment("t", {"x": 1})])
        .hypotheses([hyp])
        .replicates(replicates)
        .build()
    )
    return module


def test_a_hypothesis_given_the_session_alpha_is_a_new_one_that_pickles() -> None:
    made = with_alpha(better, 0.01)
    assert (better.verifier.params, made.verifier.params) == ({}, {"alpha": 0.01})  # type: ignore[attr-defined]
    again = pickle.loads(pickle.dumps(made))
    assert (again.name, again.verifier.params) == ("better", {"alpha": 0.01})  # type: ignore[attr-defined]
    assert with_alpha(explicit, 0.01) is explicit


def test_a_session_alpha_a_verifier_cannot_take_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "experiment_gate.py"
    with pytest.raises(CrystallizeUsageError) as info:
        experiments_in(_module_with(same, 4), path, None, 0.6)
    assert str(info.value) == (
        "experiment 'gate': equivalent(alpha=...) takes a level below 0.5 (the gate decides on "
        "the (1 - 2 alpha) interval), got 0.6; write for example equivalent(alpha=0.05) (alpha "
        "0.6 is the session's, from --crystallize-alpha or ini crystallize_alpha: give this "
        "verifier an alpha of its own, or change the session's)"
    )
    # auto on 6 paired replicates reaches p = 0.031: below 0.05, never below 0.01.
    with pytest.raises(ExperimentDefinitionError) as error:
        experiments_in(_module_with(better, 6), path, None, 0.01)
    assert str(error.value) == (
        "experiment 'gate': hypothesis 'better' uses auto with 6 replicates, whose smallest "
        "possible p-value is 0.03125 >= alpha=0.01, so it can never pass; use more replicates "
        "or a t-test (alpha 0.01 is the session's, from --crystallize-alpha or ini "
        "crystallize_alpha: give this verifier an alpha of its own, or change the session's)"
    )
    # A quick look (the session's replicates) is judged, not refused: see below.
    assert experiments_in(_module_with(better, 6), path, 3, 0.01)["gate"].quick_look


# --- a quick look ---------------------------------------------------------------------------

QUICK_FILE = """
from scipy.stats import shapiro

from pytest_crystallize import (
    Experiment, data_source, hypothesis, pipeline_step, stats, treatment, verifier,
)

LOG = "steps.log"


@data_source
def level(ctx):
    return 10.0 + ctx["replicate"] % 3


@pipeline_step()
def shift(value, ctx, *, lift=0.0):
    with open(LOG, "a") as log:
        log.write(f"{ctx['condition']} {ctx['replicate']}\\n")
    return value, {"score": value + lift + 0.1 * ctx["replicate"] * lift}


def differences(baseline, treatment):
    return [t - b for b, t in zip(baseline["score"], treatment["score"])]


@verifier
def normality(baseline, treatment, alpha=0.05):
    p = float(shapiro(differences(baseline, treatment)).pvalue)  # NaN below 3 values
    return {"p_value": p, "significant": p < alpha}


@verifier
def sign_test(baseline, treatment, alpha=0.05):
    diffs = differences(baseline, treatment)
    if len(diffs) < 3:
        raise ValueError(f"sign_test needs 3 pairs, got {len(diffs)}")
    return {"p_value": 0.5, "significant": False}


@hypothesis(verifier=stats.auto(), metrics="score")
def auto(result):
    return result["p_value"]


@hypothesis(verifier=stats.paired_t_test(), metrics="score")
def ttest(result):
    return result["p_value"]


@hypothesis(verifier=normality(), metrics="score")
def normal(result):
    return result["p_value"]


@hypothesis(verifier=sign_test(), metrics="score")
def signs(result):
    return result["p_value"]


def made(name, hypotheses):
    return (
        Experiment.builder(name)
        .datasource(level())
        .add_step(shift())
        .treatments([treatment("lifted", {"lift": 1.0})])
        .hypotheses(hypotheses)
        .replicates(8)
        .build()
    )


quick = made("quick", [auto, ttest, normal])
raising = made("raising", [signs])  # its error is every verdict of its experiment
"""


@pytest.mark.parametrize(
    ("dist", "n"),
    [pytest.param(IN_PROCESS, 1, id="n0-1"), pytest.param(TWO_WORKERS, 2, id="n2-2")],
)
def test_a_quick_look_runs_every_step_and_skips_what_it_cannot_judge(
    ourtester: pytest.Pytester, summary_rows: SummaryRows, dist: Sequence[str], n: int
) -> None:
    ourtester.makepyfile(experiment_quick=QUICK_FILE)
    result = ourtester.runpytest("--crystallize", "--crystallize-replicates", str(n), *dist, "-rs")
    ran = sorted((ourtester.path / "steps.log").read_text().splitlines())
    runs = [f"{c} {r}" for c in ("baseline", "lifted") for r in range(n)]
    assert ran == sorted(runs * 2)  # every step of both experiments ran, once
    replicates = f"{n} replicate{'s' if n > 1 else ''}"
    note = f"  note: this quick look (--crystallize-replicates) gives each condition {replicates}"
    # auto needs 6 paired replicates at 0.05 (2 / 2**6 < 0.05); the t-test judges 2.
    result.stdout.fnmatch_lines(
        [
            "*quick::auto::lifted: too few replicates for auto at alpha 0.05 (need N >= 6): the "
            f"smallest p-value it can give with {n} per condition is {2 / 2**n:g}",
        ]
    )
    result.stdout.fnmatch_lines(  # Shapiro-Wilk gives NaN below 3 values
        ["*: normality did not pass (the p-value is nan, so nothing can be concluded)", note + "*"]
    )
    raised = result.outlines.index(  # a verifier that raises: an error verdict, as always
        f"verifier 'sign_test' of hypothesis 'signs' raised ValueError: sign_test needs 3 "
        f"pairs, got {n} (treatment 'lifted', metrics ['score'], {n} complete {replicates[2:]})"
    )
    assert result.outlines[raised + 1] == note + "; the verifier may need more"
    verdicts = {key: row["verdict"].split()[0] for key, row in summary_rows(result).items()}
    assert verdicts == {
        "quick::auto::lifted": "SKIPPED",
        "quick::ttest::lifted": "SKIPPED" if n == 1 else "PASSED",
        "quick::normal::lifted": "FAILED",
        "raising::signs::lifted": "ERROR",
    }
    if n == 1:
        result.stdout.fnmatch_lines(
            [
                "*quick::ttest::lifted: too few replicates for paired_t_test at alpha 0.05 (n=1 "
                "vs 1; a test needs at least 2 per condition)",
            ]
        )
    outcomes = result.parseoutcomes()
    assert (outcomes["failed"], outcomes["errors"], outcomes["skipped"]) == (1, 1, 3 - n)
    assert outcomes["passed"] == 4 * (1 if dist == IN_PROCESS else n) + n - 1  # chunks pass


def test_without_a_quick_look_too_few_replicates_stay_a_definition_error(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_quick=QUICK_FILE.replace(".replicates(8)", ".replicates(4)"))
    result = ourtester.runpytest("--crystallize", *IN_PROCESS)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*experiment 'quick': hypothesis 'auto' uses auto with 4 replicates, whose smallest "
            "possible p-value is 0.125 >= alpha=0.05, so it can never pass; use more replicates "
            "or a t-test",
        ]
    )
