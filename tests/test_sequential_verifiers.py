"""Proof by simulation: every built-in verifier and gate keeps its alpha in a group-sequential
design, and the design stops real runs at the look its rules say.

Each simulated experiment compares one treatment with the baseline at K = 4 looks, after 12,
24, 36 and 48 replicates per condition, under the null: the same distribution in both
conditions (for the gates, the boundary of their null: ``non_inferior(margin=m)`` with the
true change exactly -m, or +m with ``higher_is_better=False``; ``equivalent(margin=m)`` with
the true change exactly +m), on normal noise and on t(3) noise scaled to unit variance.
Paired verifiers get paired data (a shared per-replicate component plus independent noise),
the others independent samples. The levels and futility thresholds of each case are the
library's (``look_plan``); the rule stops at the first look ``k`` whose p-value is at most
``levels[k]`` (a false rejection) or, with futility, an interim look whose one-sided p-value
in the better direction (higher; a two-sided test's from its p-value and the sign of the
difference of means) is above ``futility[k]`` (no rejection); else the last look decides.

The p-values of every path at every look are computed at once (``_vectorised_pvalues``):
scipy's vectorised tests (``axis=1``) in the method the library picks, and for the
permutation test and the bootstrap (whose p-value is a seeded permutation test) the
library's own seeded permutations applied to every path by a matrix product. Calling these
two verifiers path by path is too slow here (5-30 ms a call at their default 4999 and 1999
resamples: a few hundred paths of their 16 cases would take minutes), so they get 2,000
paths and the others 20,000. ``auto`` is Welch's or the paired t-test on these data (n >= 10,
no ties). A separate test checks, at every look on the first rows of every case, that these
p-values are the library verifier's own (``rel=1e-9``) and that the draws have no ties.

Alpha must be at most the binomial 99% upper bound ``binom.interval(0.99, paths,
0.05)[1] / paths``. The same machinery with the naive rule (p <= 0.05 at every look) must
exceed it: the check can fail. The table of each verifier is printed (``-s``) and is in
each assertion message; a Monte Carlo or exact permutation p-value cannot go below
``1 / count`` of its permutations, so the note column names the looks it cannot cross.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import _vectorised_pvalues as vp
import numpy as np
import pytest
from scipy import stats as ss

from pytest_crystallize import (
    BASELINE_CONDITION,
    Experiment,
    Hypothesis,
    data_source,
    pipeline_step,
    stats,
    treatment,
)
from pytest_crystallize._engine.hypotheses import Samples
from pytest_crystallize._report.stagewise import LookPlan, look_plan
from pytest_crystallize.stats._common import BOOTSTRAP_RESAMPLES, MAX_RESAMPLES

pytestmark = pytest.mark.usefixtures("in_tmp_path")

ALPHA, MARGIN = 0.05, 0.5
PATHS, RESAMPLED_PATHS = 20_000, 2_000
LOOKS = (12, 24, 36, 48)
FRACTIONS = tuple(n / LOOKS[-1] for n in LOOKS)
NOISES = ("normal", "t(3)")
SPENDINGS = ("obrien-fleming", "pocock")
SEEDS = {"normal": 1501, "t(3)": 1502}
VERIFIERS = (
    "auto",
    "welch_t_test",
    "paired_t_test",
    "mann_whitney",
    "wilcoxon",
    "permutation_test",
    "bootstrap_ci",
    "non_inferior",
    "equivalent",
)


def bound(paths: int) -> float:
    return float(ss.binom.interval(0.99, paths, ALPHA)[1] / paths)


@functools.lru_cache(maxsize=4)
def draws(noise: str, paired: bool) -> tuple[Any, Any]:
    """Baseline and treatment rows (PATHS x 48), unit variance, the same distribution; paired:
    a shared component (correlation 0.64 between the conditions) plus independent noise."""
    rng = np.random.default_rng(SEEDS[noise] + 10 * paired)
    shape = (2 + paired, PATHS, LOOKS[-1])
    z = rng.standard_normal(shape) if noise == "normal" else rng.standard_t(3, shape) / np.sqrt(3)
    if paired:
        return 0.8 * z[0] + 0.6 * z[1], 0.8 * z[0] + 0.6 * z[2]
    return z[0], z[1]


class Case(NamedTuple):
    label: str
    make: Callable[[str], Any]  # side -> the library's verifier
    paired: bool
    pvalues: vp.Pvalues  # (baseline, treatment) -> {side: p-value per row}
    sides: tuple[str, ...] = ("two-sided", "greater")  # ("gate",): one-sided, no alternative
    change: float = 0.0  # the true change (a gate: the boundary of its null)
    paths: int = PATHS
    resamples: int = 0  # a resampling test's permutations (its floor p-value)


GATE = ("gate",)


def _resampling(name: str, make: Callable[[str], Any], resamples: int) -> list[Case]:
    return [
        Case(
            f"{name}, {'paired' if paired else 'independent'}",
            make,
            paired,
            vp.resampled(paired, resamples),
            paths=RESAMPLED_PATHS,
            resamples=resamples,
        )
        for paired in (False, True)
    ]


CASES = {
    "auto": [
        Case("auto, independent", lambda s: stats.auto(alternative=s), False, vp.WELCH),
        Case("auto, paired", lambda s: stats.auto(alternative=s), True, vp.PAIRED_T),
    ],
    "welch_t_test": [
        Case("welch_t_test", lambda s: stats.welch_t_test(alternative=s), False, vp.WELCH)
    ],
    "paired_t_test": [
        Case("paired_t_test", lambda s: stats.paired_t_test(alternative=s), True, vp.PAIRED_T)
    ],
    "mann_whitney": [
        Case("mann_whitney", lambda s: stats.mann_whitney(alternative=s), False, vp.MANN_WHITNEY)
    ],
    "wilcoxon": [Case("wilcoxon", lambda s: stats.wilcoxon(alternative=s), True, vp.WILCOXON)],
    "permutation_test": _resampling(
        "permutation_test", lambda s: stats.permutation_test(alternative=s), MAX_RESAMPLES
    ),
    "bootstrap_ci": _resampling(
        "bootstrap_ci", lambda s: stats.bootstrap_ci(alternative=s), BOOTSTRAP_RESAMPLES
    ),
    "non_inferior": [
        Case(
            f"non_inferior(margin={MARGIN}), {'paired' if paired else 'independent'}",
            lambda s: stats.non_inferior(margin=MARGIN),
            paired,
            vp.non_inferior(paired, MARGIN),
            GATE,
            -MARGIN,
        )
        for paired in (False, True)
    ]
    + [
        Case(
            f"non_inferior(margin={MARGIN}, higher_is_better=False), independent",
            lambda s: stats.non_inferior(margin=MARGIN, higher_is_better=False),
            False,
            vp.non_inferior(False, MARGIN, higher_is_better=False),
            GATE,
            MARGIN,
        )
    ],
    "equivalent": [
        Case(
            f"equivalent(margin={MARGIN}), {'paired' if paired else 'independent'}",
            lambda s: stats.equivalent(margin=MARGIN),
            paired,
            vp.equivalent(paired, MARGIN),
            GATE,
            MARGIN,
        )
        for paired in (False, True)
    ],
}


# --- the simulation --------------------------------------------------------------------------


@functools.cache
def simulated(pvalues: vp.Pvalues, paired: bool, change: float, paths: int, noise: str) -> Any:
    """Each side's p-value of every path (rows) at every look (columns); shared by the
    cases that compute the same (``auto`` and the t-tests)."""
    b, t = draws(noise, paired)
    looks = [pvalues(b[:paths, :n], t[:paths, :n] + change) for n in LOOKS]
    out = {side: np.stack([p[side] for p in looks], axis=1) for side in looks[0]}
    ups = [t[:paths, :n].mean(axis=1) + change > b[:paths, :n].mean(axis=1) for n in LOOKS]
    out["up"] = np.stack(ups, axis=1)  # the estimate points higher: the better direction
    return out


def plan(case: Case, side: str, spending: str) -> LookPlan:
    return look_plan(Hypothesis(verifier=case.make(side), metrics="m"), FRACTIONS, spending)


def rejected(p: Any, levels: Any, futility: Any = None, up: Any = None) -> float:
    """The rate of false rejections: the first look at or below its level, unless an interim
    look above its futility threshold (with ``futility``) or the last look comes first. The
    threshold applies to the one-sided p-value in the better direction (higher): a one-sided
    test's own, a two-sided test's (``up``: whether each estimate points higher) ``p / 2``
    when it points higher, else ``1 - p / 2``, as the library does."""
    crosses = p <= np.asarray(levels)
    stops = crosses.copy()
    if futility is not None:
        one_sided = p if up is None else np.where(up, p / 2, 1 - p / 2)
        stops[:, :-1] |= one_sided[:, :-1] > np.asarray(futility)[:-1]
    stops[:, -1] = True
    first = stops.argmax(axis=1)
    return float(crosses[np.arange(len(p)), first].mean())


def floor_note(case: Case, side: str, plans: dict[str, LookPlan]) -> str:
    """The looks a permutation p-value (at least 1 / its count of permutations) cannot cross."""
    notes = []
    for spending, made in plans.items():
        for k, n in enumerate(LOOKS):
            if case.resamples:
                exact = case.paired and 2**n <= case.resamples
                count = 2**n if exact else case.resamples + 1
            elif case.pvalues is vp.WILCOXON:
                count = 2**n  # exact: the 2^n sign patterns of the ranks
            else:
                continue
            floor = (2 if side == "two-sided" else 1) / count
            if floor > made.levels[k]:
                notes.append(
                    f"{spending} look {k + 1} cannot cross (p>={floor:.2g}>{made.levels[k]:.2g})"
                )
    return "; ".join(notes) or "-"


COLUMNS = ("obrien-fleming", "obrien-fleming+futility", "pocock", "pocock+futility", "naive")


@functools.cache
def table(verifier: str) -> tuple[dict[tuple[str, str, str], dict[str, Any]], str]:
    """Every case of ``verifier`` (label, side, noise): its alpha per rule, and the table."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for case in CASES[verifier]:
        for side in case.sides:
            plans = {spending: plan(case, side, spending) for spending in SPENDINGS}
            for noise in NOISES:
                found = simulated(case.pvalues, case.paired, case.change, case.paths, noise)
                p, up = found[side], found["up"] if side == "two-sided" else None
                row: dict[str, Any] = {"paths": case.paths, "bound": bound(case.paths)}
                for spending, made in plans.items():
                    row[spending] = rejected(p, made.levels)
                    row[f"{spending}+futility"] = rejected(p, made.levels, made.futility, up)
                row["naive"] = rejected(p, (ALPHA,) * len(LOOKS))
                row["note"] = floor_note(case, side, plans)
                rows[(case.label, side, noise)] = row
    lines = [
        f"{verifier}: alpha={ALPHA} under the null, looks at {LOOKS} replicates; naive: "
        f"p <= {ALPHA} at every look; bound: binomial 99% upper bound of alpha at paths",
        " | ".join(["case", "side", "noise", "paths", "bound", *COLUMNS, "note"]),
    ]
    for (label, side, noise), row in rows.items():
        cells = [f"{row[c]:.4f}" for c in ("bound", *COLUMNS)]
        lines.append(" | ".join([label, side, noise, str(row["paths"]), *cells, row["note"]]))
    text = "\n".join(lines)
    print(text)
    return rows, text


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_every_verifier_keeps_alpha_sequentially_and_the_naive_rule_does_not(
    verifier: str,
) -> None:
    rows, text = table(verifier)
    for key, row in rows.items():
        for column in COLUMNS[:-1]:
            assert row[column] <= row["bound"], f"{key}, {column}\n{text}"
        # The same machinery with p <= 0.05 at every look exceeds the bound: it can fail.
        assert row["naive"] > row["bound"], f"{key}, naive\n{text}"


def samples(b: Any, t: Any, paired: bool, metric: str = "m") -> tuple[Samples, Samples]:
    """``{metric: values}`` per condition, as a verifier receives them; paired replicates
    share their seeds."""
    baseline = Samples({metric: [float(v) for v in b]})
    treated = Samples({metric: [float(v) for v in t]})
    baseline.seeds = tuple(range(len(b)))
    treated.seeds = baseline.seeds if paired else tuple(range(1000, 1000 + len(t)))
    return baseline, treated


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_the_simulated_pvalues_are_the_verifiers_own(verifier: str) -> None:
    """On a row of each case and noise, at every look, each side: the vectorised p-value is
    the library verifier's. The rank tests' methods hold for tie-free data: so are the draws."""
    for case, noise in itertools.product(CASES[verifier], NOISES):
        b, t = draws(noise, case.paired)
        b, t = b[:2], t[:2] + case.change
        row = NOISES.index(noise)  # one row per noise: a resampling verifier takes 5-30 ms
        for n in LOOKS:
            vectorised = case.pvalues(b[:, :n], t[:, :n])
            for side in case.sides:
                made = case.make(side)
                result = made(*samples(b[row, :n], t[row, :n], case.paired))
                where = f"{case.label}, {side}, {noise}, row {row}, n={n}: {result.test}"
                assert result.pvalue == pytest.approx(vectorised[side][row], rel=1e-9), where
                if verifier == "auto":
                    assert result.test == f"auto: {'paired' if case.paired else 'Welch'} t-test"
    if verifier in ("mann_whitney", "wilcoxon"):
        for noise in NOISES:
            b, t = draws(noise, verifier == "wilcoxon")
            values = np.abs(t - b) if verifier == "wilcoxon" else np.concatenate([b, t], axis=1)
            assert (np.diff(np.sort(values, axis=1), axis=1) > 0).all(), noise
            assert (values != 0).all(), noise


# --- real runs stop where the rules say ---------------------------------------------------

NOISE = np.random.default_rng(1503).standard_normal((3, LOOKS[-1]))  # shared, baseline, treated


def real_data(shift: float) -> tuple[Any, Any]:
    """The 48 replicates of each condition: correlated (paired by seed), the treatment shifted."""
    return 0.8 * NOISE[0] + 0.6 * NOISE[1], 0.8 * NOISE[0] + 0.6 * NOISE[2] + shift


@data_source
def shared(ctx: Any) -> float:
    return float(NOISE[0, ctx["replicate"]])


@pipeline_step()
def measure(common: float, ctx: Any, *, shift: float = 0.0) -> tuple[float, dict[str, float]]:
    own = NOISE[1 if ctx["condition"] == BASELINE_CONDITION else 2, ctx["replicate"]]
    value = 0.8 * common + 0.6 * float(own) + shift
    return value, {"score": value}


def predicted(made: Any, shift: float) -> tuple[int, str]:
    """The look the rules stop at, and the outcome, from the verifier's own p-values on the
    first 12, 24, 36 and 48 replicates (which the data source makes known in advance)."""
    made_plan = look_plan(Hypothesis(verifier=made, metrics="score"), FRACTIONS, SPENDINGS[0])
    b, t = real_data(shift)
    for k, n in enumerate(LOOKS):
        p = made(*samples(b[:n], t[:n], paired=True, metric="score")).pvalue
        if p <= made_plan.levels[k]:
            return k + 1, "passed"
        if made_plan.side == "two-sided":  # in the better direction, higher (see rejected)
            p = p / 2 if t[:n].mean() > b[:n].mean() else 1 - p / 2
        if k + 1 == len(LOOKS) or p > made_plan.futility[k]:
            return k + 1, "failed"
    raise AssertionError("unreachable: the last look decides")


def test_real_runs_stop_at_the_look_the_rules_predict() -> None:
    """Three verifiers on deterministic paired data; the design (O'Brien-Fleming, futility on)
    must stop where the rule applied to the verifier's own p-values stops."""
    designs = [
        (stats.welch_t_test(), 1.0),  # crosses at look 2
        (stats.wilcoxon(alternative="greater"), -0.6),  # futile at look 1 (p = 0.99)
        (stats.non_inferior(margin=0.2), 0.0),  # crosses at the last look
    ]
    seen = set()
    for made, shift in designs:
        look, outcome = predicted(made, shift)
        seen.add(look)
        result = (
            Experiment.builder("seq")
            .datasource(shared())
            .add_step(measure())
            .treatments([treatment("shifted", {"shift": shift})])
            .hypotheses([Hypothesis(verifier=made, metrics="score", name="h")])
            .replicates(LOOKS[-1])
            .sequential(looks=len(LOOKS))
            .build()
            .run()
        )
        (verdict,) = result.verdicts
        used = LOOKS[look - 1]
        where = f"{made}, shift {shift}: {verdict.message}"
        assert (result.sequential or {}).get("stopped_at_look") == look, where
        assert (verdict.look, verdict.outcome, verdict.n_treatment) == (look, outcome, used), where
        b, t = real_data(shift)  # the runs are these replicates; the later ones never ran
        expected = {(BASELINE_CONDITION, i, b[i]) for i in range(used)}
        expected |= {("shifted", i, t[i]) for i in range(used)}
        assert {(r.condition, r.replicate, r.metrics["score"][0]) for r in result.runs} == expected
    assert seen == {1, 2, 4}
