"""The statistics layer under ``pytest --crystallize`` (issue 5, items 2-5): p-values in the
report, family correction from the command line, the ini and the experiment, inconclusive
gates, plan mode, degenerate data, and the same numbers under xdist.

The experiments read their metric from a table (condition x replicate), so every p-value is
known in advance and computed here with scipy.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _support import SummaryRows, builder_source
from scipy import stats as ss

from pytest_crystallize import stats

BASE = (10.0, 11.0, 9.5, 10.5, 10.2, 9.8, 10.9, 9.1)


def shifted(*deltas: float) -> tuple[float, ...]:
    return tuple(b + d for b, d in zip(BASE, deltas, strict=True))


# Four treatments: "strong" passes after any correction; "border" (raw p = 0.036) passes
# alone but not after Holm or Bonferroni over the family of four; the flat ones never pass.
FAMILY = {
    "baseline": BASE,
    "strong": shifted(0.9, 0.5, 1.1, 0.6, 0.8, 0.3, 0.6, 0.4),
    "border": shifted(0.9, -0.3, 1.1, 0.2, 0.8, -0.1, 0.6, 0.4),
    "flat_a": shifted(0.3, -0.4, 0.1, -0.2, 0.5, -0.3, 0.0, 0.2),
    "flat_b": shifted(-0.2, 0.4, 0.1, -0.5, 0.3, 0.2, -0.4, 0.6),
}
TREATMENTS = [name for name in FAMILY if name != "baseline"]

# FAMILY's raw paired t-test p-values (the first test checks them against scipy) and their
# adjustment over the family of m = 4, worked by hand, not by re-running the implementation's
# loop. Holm: sort ascending, multiply the k-th smallest by m - k + 1, keep each at least the
# one before, cap at 1. Bonferroni: multiply by m, cap at 1.
#   strong 0.000235751 x 4 = 0.000943003
#   border 0.0363265   x 3 = 0.108980
#   flat_b 0.666101    x 2 = 1.33 -> capped at 1
#   flat_a 0.826380    x 1 = 0.826 -> 1, not below the one before
FAMILY_P = {  # name: (raw, Holm, Bonferroni)
    "strong": (0.000235751, 0.000943003, 0.000943003),
    "border": (0.0363265, 0.108980, 0.145306),
    "flat_a": (0.826380, 1.0, 1.0),
    "flat_b": (0.666101, 1.0, 1.0),
}

# One treatment compared by four verifiers; no ties, so the rank tests are exact. Pairing
# matters: the paired tests reach p = 0.0078, Welch only 0.058.
MIXED_TABLE = {"baseline": BASE, "gain": shifted(0.93, 0.51, 1.17, 0.64, 0.82, 0.36, 0.68, 0.45)}

# A 2% relative non-inferiority gate whose 90% CI of the change straddles -2%.
GATE = {
    "baseline": (100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 99.8, 100.0),
    "slower": (97.0, 102.0, 96.5, 101.0, 98.0, 101.7, 96.3, 99.5),
}

# Deterministic pipelines: constants, an exact shift, and a NaN metric.
DEGENERATE = {
    "baseline": (1.0,) * 6,
    "same": (1.0,) * 6,
    "better": (2.0,) * 6,
    "broken": (1.0, 1.5, float("nan"), 1.0, 1.5, 1.0),
}
SHIFT = {"baseline": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0), "plus_two": (3.0, 4.0, 5.0, 6.0, 7.0, 8.0)}

HEADER = """\
from __future__ import annotations

from pytest_crystallize import Experiment, Hypothesis, data_source, pipeline_step, stats, treatment

nan = float("nan")
TABLES = {tables}


@data_source
def replicate_index(ctx):
    return ctx["replicate"]


@pipeline_step()
def lookup(index, ctx, *, table=""):
    value = TABLES[table][ctx["condition"]][index]
    return value, {{"score": value}}
"""


def source(experiments: Mapping[str, tuple[Mapping[str, Sequence[float]], str, str]]) -> str:
    """An experiment file: ``{name: (table, hypotheses source, extra builder calls)}``."""
    tables = {name: dict(table) for name, (table, _, _) in experiments.items()}
    parts = [HEADER.format(tables=repr(tables))]
    for name, (table, hypotheses, extra) in experiments.items():
        parts.append(
            builder_source(
                name,
                source="replicate_index()",
                steps=[f"lookup(table={name!r})"],
                treatments=f'treatment(t, {{}}) for t in TABLES[{name!r}] if t != "baseline"',
                hypotheses=hypotheses,
                calls=[extra.strip()] if extra else [],
                replicates=len(next(iter(table.values()))),
            )
        )
    return "".join(parts)


PAIRED = 'Hypothesis(verifier=stats.paired_t_test(), metrics="score", name="paired")'
GATED = (
    "Hypothesis(verifier=stats.non_inferior(margin=0.02, relative=True), "
    'metrics="score", name="gate")'
)
MIXED = ", ".join(
    f'Hypothesis(verifier=stats.{call}, metrics="score", name={name!r})'
    for name, call in (
        ("auto", "auto()"),
        ("welch", "welch_t_test()"),
        ("ranks", "mann_whitney()"),
        ("signed", "wilcoxon()"),
    )
)


def literal(text: str) -> str:
    """``text`` as an fnmatch pattern that matches only itself (``[`` opens a class)."""
    return text.replace("[", "[[]")


def write(pytester: pytest.Pytester, name: str, **experiments: Any) -> Path:
    return pytester.makepyfile(**{name: source(experiments)})


def write_family(pytester: pytest.Pytester, extra: str = "") -> Path:
    return write(pytester, "experiment_family", family=(FAMILY, PAIRED, extra))


def raw_p(table: Mapping[str, Sequence[float]], name: str) -> float:
    return float(ss.ttest_rel(table[name], table["baseline"]).pvalue)


def p_cell(raw: float, adjusted: float | None) -> str:
    """The summary's ``p (adj)`` cell."""
    return f"{raw:.3g}" + ("" if adjusted is None else f" ({adjusted:.3g})")


def expected_adjusted(method: str) -> dict[str, float]:
    """FAMILY's p-values adjusted by ``method``, from the hand-computed table."""
    column = {"none": 0, "holm": 1, "bonferroni": 2}[method]
    return {name: row[column] for name, row in FAMILY_P.items()}


def test_the_table_gives_the_p_values_the_tests_rely_on() -> None:
    for name in TREATMENTS:
        assert raw_p(FAMILY, name) == pytest.approx(FAMILY_P[name][0], rel=1e-5), name
    assert raw_p(FAMILY, "strong") < 0.001
    assert 0.03 < raw_p(FAMILY, "border") < 0.04
    assert min(raw_p(FAMILY, "flat_a"), raw_p(FAMILY, "flat_b")) > 0.5
    result = stats.non_inferior(margin=0.02, relative=True)(
        {"m": list(GATE["baseline"])}, {"m": list(GATE["slower"])}
    )
    assert result.outcome == "inconclusive"


# --- p-values in the report ----------------------------------------------------------------


def test_verdict_lines_show_p_and_the_summary_shows_raw_and_adjusted_p_and_the_change(
    ourtester: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    write_family(ourtester)
    result = ourtester.runpytest("--crystallize", "-rA", "-vv")
    result.assert_outcomes(passed=5 + 1, failed=3)
    border = raw_p(FAMILY, "border")
    result.stdout.fnmatch_lines_random(
        [
            f"PASSED p={raw_p(FAMILY, 'strong'):.3g} experiment_family.py::family::paired::strong"
            " - paired t-test: p=*",
            f"FAILED p={border:.3g} experiment_family.py::family::paired::border - *",
            f"FAILED p={raw_p(FAMILY, 'flat_a'):.3g} experiment_family.py::family::paired::flat_a*",
        ]
    )
    header = next(line for line in result.outlines if line.startswith("experiment  "))
    assert "  change [95% CI]  " in header
    assert "  p (adj)  " in header
    rows = summary_rows(result)
    adjusted = expected_adjusted("holm")
    b = np.array(FAMILY["baseline"])
    for name in TREATMENTS:
        row = rows[f"family::paired::{name}"]
        assert row["p (adj)"] == p_cell(raw_p(FAMILY, name), adjusted[name])
        t = np.array(FAMILY[name])
        direct = ss.ttest_rel(t, b)
        low, high = direct.confidence_interval(0.95)
        change = f"{(t - b).mean():+.3g} [{low:+.3g}, {high:+.3g}]"
        assert row["change [95% CI]"] == change
        assert row["n"] == "8/8"
    assert rows["family::paired::strong"]["verdict"] == "PASSED"
    assert rows["family::paired::border"]["verdict"] == "FAILED"
    # The failure says why: it passes alone, not after the correction.
    result.stdout.fnmatch_lines(
        [
            f"*paired t-test did not pass (p={border:.3g} < alpha=0.05 alone, but not after holm"
            f" correction over 4 comparisons (adjusted p={adjusted['border']:.3g}))",
        ]
    )


def test_other_built_in_verifiers_report_their_own_p_values(
    ourtester: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    write(ourtester, "experiment_mixed", mixed=(MIXED_TABLE, MIXED, ""))
    result = ourtester.runpytest("--crystallize", "-rA", "-vv")
    b, t = np.array(MIXED_TABLE["baseline"]), np.array(MIXED_TABLE["gain"])
    assert len(np.unique(np.r_[b, t])) == 16  # no ties: the rank tests are exact
    assert len(np.unique(np.abs(t - b))) == 8
    expected = {
        "auto": ss.permutation_test(  # 8 replicates: auto() takes the exact sign-flip test
            (t - b,),
            lambda x, axis: np.mean(x, axis=axis),
            permutation_type="samples",
            vectorized=True,
        ).pvalue,
        "welch": ss.ttest_ind(t, b, equal_var=False).pvalue,
        "ranks": ss.mannwhitneyu(t, b, method="exact").pvalue,
        "signed": ss.wilcoxon(t, b).pvalue,
    }
    # The raw p-values, and Holm's adjustment over the four by hand: the two paired tests
    # tie at 2/256 = 0.0078125 (x 4 = 0.03125, x 3 = 0.0234 -> 0.03125), Mann-Whitney's
    # 642/12870 = 0.0498834 x 2 = 0.0997669, Welch's 0.0581674 x 1 -> 0.0997669.
    table = {  # name: (raw, Holm)
        "auto": (0.0078125, 0.03125),
        "welch": (0.0581674, 0.0997669),
        "ranks": (0.0498834, 0.0997669),
        "signed": (0.0078125, 0.03125),
    }
    assert expected == pytest.approx({name: raw for name, (raw, _) in table.items()}, rel=1e-5)
    holm = {name: adjusted for name, (_, adjusted) in table.items()}
    rows = summary_rows(result)
    for name, p in expected.items():
        row = rows[f"mixed::{name}::gain"]
        assert row["p (adj)"] == p_cell(p, holm[name]), name
    # The paired tests pass after Holm; Mann-Whitney (p = 0.0499) passes only alone.
    assert [rows[f"mixed::{n}::gain"]["verdict"] for n in expected] == [
        "PASSED",
        "FAILED",
        "FAILED",
        "PASSED",
    ]
    result.assert_outcomes(passed=2 + 2, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            f"PASSED p={expected['auto']:.3g} experiment_mixed.py::mixed::auto::gain"
            " - auto: paired permutation test: p=*",
            f"PASSED p={expected['signed']:.3g} experiment_mixed.py::mixed::signed::gain"
            " - Wilcoxon signed-rank: p=*",
            f"FAILED p={expected['welch']:.3g} experiment_mixed.py::mixed::welch::gain - *",
        ]
    )


# --- family correction ----------------------------------------------------------------------


def test_correction_none_passes_the_borderline_verdict_that_holm_fails(
    ourtester: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    write_family(ourtester)
    holm = ourtester.runpytest("--crystallize")
    none = ourtester.runpytest("--crystallize", "--crystallize-correction", "none")
    holm.assert_outcomes(passed=5 + 1, failed=3)
    none.assert_outcomes(passed=5 + 2, failed=2)
    border = raw_p(FAMILY, "border")
    assert summary_rows(holm)["family::paired::border"]["verdict"] == "FAILED"
    row = summary_rows(none)["family::paired::border"]
    assert row["verdict"] == "PASSED"
    assert row["p (adj)"] == p_cell(border, border)


def test_the_correction_option_takes_only_known_methods(ourtester: pytest.Pytester) -> None:
    write_family(ourtester)
    result = ourtester.runpytest("--crystallize", "--crystallize-correction", "sidak")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--crystallize-correction: invalid choice: 'sidak'*"])


def test_ini_crystallize_correction_bonferroni_adjusts_every_p_value(
    ourtester: pytest.Pytester, write_ini: Callable[[str], Path], summary_rows: SummaryRows
) -> None:
    write_ini("crystallize_correction = bonferroni")
    write_family(ourtester)
    result = ourtester.runpytest("--crystallize", "-rA", "--junitxml=report.xml")
    result.assert_outcomes(passed=5 + 1, failed=3)
    rows = summary_rows(result)
    bonferroni, holm = expected_adjusted("bonferroni"), expected_adjusted("holm")
    assert bonferroni["border"] != pytest.approx(holm["border"])  # the two differ here
    for name in TREATMENTS:
        assert rows[f"family::paired::{name}"]["p (adj)"] == p_cell(
            raw_p(FAMILY, name), bonferroni[name]
        )
    result.stdout.fnmatch_lines(
        [f"  p={raw_p(FAMILY, 'border'):.4g} (adjusted {bonferroni['border']:.4g}, bonferroni)*"]
    )
    corrections = {
        p.get("value")
        for p in ET.parse(ourtester.path / "report.xml").iter("property")
        if p.get("name") == "correction"
    }
    assert corrections == {"bonferroni"}


def test_the_command_line_correction_overrides_the_ini(
    ourtester: pytest.Pytester, write_ini: Callable[[str], Path], summary_rows: SummaryRows
) -> None:
    write_ini("crystallize_correction = bonferroni")
    write_family(ourtester)
    result = ourtester.runpytest("--crystallize", "--crystallize-correction=holm")
    row = summary_rows(result)["family::paired::border"]
    assert row["p (adj)"] == p_cell(raw_p(FAMILY, "border"), expected_adjusted("holm")["border"])


def test_a_bad_ini_correction_is_a_usage_error(
    ourtester: pytest.Pytester, write_ini: Callable[[str], Path]
) -> None:
    write_ini("crystallize_correction = sidak")
    write_family(ourtester)
    result = ourtester.runpytest_subprocess("--crystallize")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*crystallize_correction takes one of holm, bonferroni, bh, none, got 'sidak'*"]
    )


@pytest.mark.parametrize("session", [[], ["--crystallize-correction=bonferroni"]])
def test_an_experiment_correction_overrides_the_session(
    ourtester: pytest.Pytester, summary_rows: SummaryRows, session: list[str]
) -> None:
    write_family(ourtester, extra='\n    .correction("none")')
    result = ourtester.runpytest("--crystallize", *session)
    result.assert_outcomes(passed=5 + 2, failed=2)
    border = raw_p(FAMILY, "border")
    row = summary_rows(result)["family::paired::border"]
    assert (row["verdict"], row["p (adj)"]) == ("PASSED", p_cell(border, border))


# --- inconclusive gates ---------------------------------------------------------------------

INCONCLUSIVE = (
    "inconclusive: 90% CI of the change [-2.3%, +0.3%] crosses the margin -2.0%; "
    "with n=8 the smallest detectable change is 1.9%"
)


def test_an_inconclusive_gate_fails_by_default_with_the_message(
    ourtester: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    write(ourtester, "experiment_gate", gated=(GATE, GATED, ""))
    result = ourtester.runpytest("--crystallize", "-v")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*experiment_gate.py::gated::gate::slower INCONCLUSIVE (failed) p=*",
            "hypothesis 'gate', treatment 'slower' vs baseline on 'score': paired "
            f"non-inferiority t-test: {literal(INCONCLUSIVE)}",
        ]
    )
    assert summary_rows(result)["gated::gate::slower"]["verdict"] == "INCONCLUSIVE"


def test_an_inconclusive_gate_is_skipped_with_inconclusive_skip(
    ourtester: pytest.Pytester,
) -> None:
    write(ourtester, "experiment_gate", gated=(GATE, GATED, ""))
    result = ourtester.runpytest("--crystallize", "-rs", "--crystallize-inconclusive=skip")
    result.assert_outcomes(passed=2, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"SKIPPED *{literal(INCONCLUSIVE)}"])


def test_an_inconclusive_gate_passes_with_inconclusive_pass(ourtester: pytest.Pytester) -> None:
    write(ourtester, "experiment_gate", gated=(GATE, GATED, ""))
    result = ourtester.runpytest("--crystallize", "-v", "--crystallize-inconclusive=pass")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*experiment_gate.py::gated::gate::slower INCONCLUSIVE (passed)*"])


def test_the_inconclusive_option_takes_fail_skip_or_pass(ourtester: pytest.Pytester) -> None:
    write(ourtester, "experiment_gate", gated=(GATE, GATED, ""))
    result = ourtester.runpytest("--crystallize", "--crystallize-inconclusive=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--crystallize-inconclusive: invalid choice: 'maybe'*"])


# --- plan mode ------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "relative"), [("0.5", False), ("5%", True)])
def test_plan_mode_turns_verdicts_into_skips_that_say_how_many_replicates_are_needed(
    ourtester: pytest.Pytester, option: str, relative: bool
) -> None:
    write_family(ourtester)
    result = ourtester.runpytest("--crystallize", "-rs", f"--crystallize-plan={option}")
    result.assert_outcomes(passed=5, skipped=4)
    assert result.ret == pytest.ExitCode.OK
    b = np.array(BASE)
    target = 0.05 * b.mean() if relative else 0.5
    lines = []
    for name in TREATMENTS:
        sd = float((np.array(FAMILY[name]) - b).std(ddof=1))
        needed = stats.replicates_needed(sd, target, paired=True)
        lines.append(
            f"SKIPPED *plan mode (pilot of 8 replicates): {needed} replicates detect a change of "
            f"{target:+.4g} in 'score' with 80% power (sd of paired differences {sd:.4g})*"
        )
    result.stdout.fnmatch_lines_random(lines)


@pytest.mark.parametrize("effect", ["abc", "0", "%", "0%"])
def test_plan_mode_rejects_an_effect_that_is_not_a_nonzero_number(
    ourtester: pytest.Pytester, effect: str
) -> None:
    write_family(ourtester)
    result = ourtester.runpytest("--crystallize", f"--crystallize-plan={effect}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--crystallize-plan: expected an effect such as 0.5 (absolute) or 5% (of the "
            f"baseline), got '{effect}'*"
        ]
    )


# --- degenerate data ------------------------------------------------------------------------


def test_degenerate_experiments_are_flagged_in_the_summary_and_junit_has_no_nan_or_inf(
    ourtester: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    write(ourtester, "experiment_degenerate", constant=(DEGENERATE, PAIRED, ""))
    result = ourtester.runpytest("--crystallize", "-rA", "-vv", "--junitxml=report.xml")
    result.assert_outcomes(passed=4 + 1, failed=2)
    rows = summary_rows(result)
    verdicts = {key: row["verdict"] for key, row in rows.items()}
    assert verdicts == {
        "constant::paired::same": "FAILED !",
        "constant::paired::better": "PASSED !",
        "constant::paired::broken": "FAILED !",
    }, verdicts
    out = result.stdout.str()
    for line in (
        "! constant::paired::same: degenerate input: no variance: every paired difference is "
        "exactly 0",
        "! constant::paired::better: degenerate input: deterministic difference of +1, zero "
        "variance of the paired differences",
    ):
        assert line in out
    result.stdout.fnmatch_lines_random(
        [
            "FAILED p=1 *::constant::paired::same - *no variance: every paired difference is "
            "exactly 0*",
            "FAILED p=1 *::constant::paired::broken - *invalid data: 1 NaN or infinite metric "
            "values*",
        ]
    )
    assert rows["constant::paired::broken"]["means"] == "-"  # not "1 -> nan"
    for key, row in rows.items():
        for column, cell in row.items():
            assert not re.search(r"(?i)(?<![a-z])(nan|inf)(?![a-z])", cell), (key, column, cell)
    properties = list(ET.parse(ourtester.path / "report.xml").iter("property"))
    assert {p.get("name") for p in properties} >= {"p_value", "ci_low", "ci_high", "mde"}
    for prop in properties:
        value = prop.get("value", "")
        assert value.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity"), (
            prop.get("name"),
            value,
        )
        try:
            number = float(value)
        except ValueError:
            continue
        assert math.isfinite(number), (prop.get("name"), value)


def test_a_deterministic_difference_is_named_in_the_verdict_and_the_summary(
    ourtester: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    # "better" is constant in both conditions; "plus_two" varies, but every paired difference
    # is exactly +2. Neither is "p = 0" without a word of why.
    write(
        ourtester,
        "experiment_degenerate",
        constant=({k: DEGENERATE[k] for k in ("baseline", "better")}, PAIRED, ""),
        shift=(SHIFT, PAIRED, ""),
    )
    result = ourtester.runpytest("--crystallize", "-rA", "-vv")
    result.assert_outcomes(passed=4 + 2)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED p=0 *::constant::paired::better - *deterministic difference of +1*",
            "PASSED p=0 *::shift::paired::plus_two - *deterministic difference of +2*",
        ]
    )
    assert summary_rows(result)["shift::paired::plus_two"]["verdict"] == "PASSED !"
    result.stdout.fnmatch_lines(["! shift::paired::plus_two: *deterministic difference of +2*"])


# --- xdist ----------------------------------------------------------------------------------


def test_two_workers_give_the_same_p_values_as_one_process(
    ourtester: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    write(
        ourtester,
        "experiment_family",
        family=(FAMILY, PAIRED, ""),
        mixed=(MIXED_TABLE, MIXED, ""),
    )
    serial = summary_rows(ourtester.runpytest("--crystallize", "-n", "0"))
    parallel = summary_rows(ourtester.runpytest("--crystallize", "-n", "2"))
    assert len(serial) == 4 + 4
    assert parallel == serial


# --- what judging imports -------------------------------------------------------------------

SCIPY_LOADED = """\
import sys

import pytest


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    loaded = [m for m in ("scipy.special", "scipy.stats") if m in sys.modules]
    print("scipy modules:", loaded)
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_session_of_t_tests_never_imports_scipy_stats(
    ourtester: pytest.Pytester, workers: str
) -> None:
    # scipy.stats costs a session's judge most of a second (scipy.special a tenth): the
    # t-tests take their p-values and intervals from scipy.special. Fresh interpreters show
    # what the session owner imported; a rank test still needs scipy.stats.
    ourtester.makeconftest(SCIPY_LOADED)
    ranks = 'Hypothesis(verifier=stats.mann_whitney(), metrics="score", name="ranks")'
    write(ourtester, "experiment_t", gain=(MIXED_TABLE, PAIRED, ""))
    result = ourtester.runpytest_subprocess("--crystallize", "-n", workers, "-s")
    p = ss.ttest_rel(MIXED_TABLE["gain"], MIXED_TABLE["baseline"]).pvalue  # 0.000161
    result.stdout.fnmatch_lines(
        [literal("*scipy modules: ['scipy.special']"), f"gain * paired * gain * {p:.3g} * PASSED"]
    )
    assert result.ret == pytest.ExitCode.OK
    if workers == "2":
        return  # the owner's imports do not depend on the workers: one check that a rank
        # test does import scipy.stats (the check above can fail) is enough
    write(ourtester, "experiment_t", gain=(MIXED_TABLE, PAIRED + ", " + ranks, ""))
    result = ourtester.runpytest_subprocess("--crystallize", "-n", workers, "-s")
    result.stdout.fnmatch_lines([literal("*scipy modules: ['scipy.special', 'scipy.stats']")])
