"""The Markdown summary a reviewer reads in five seconds, and the JSON report's ``tally`` and
``plan``: the tally on the first line, the verdicts most severe first, passed rows folded
when there are many, plan mode's replicates per row; ``created`` from ``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from _support import IN_PROCESS, TWO_EXPERIMENTS, with_and_without_workers

from pytest_crystallize import CrystallizeUsageError, stats
from pytest_crystallize._report.documents import created
from pytest_crystallize._report.html import verdict_table
from pytest_crystallize._report.markdown import HEADER, markdown
from pytest_crystallize.stats._power import pilot_plan

pytestmark = pytest.mark.usefixtures("private_cache_key")

CACHE = {"hits": 3, "misses": 5, "rejected": 0, "bytes_written": 0, "seconds_saved": 0.0}


def verdict(hypothesis: str, outcome: str = "passed", **fields: Any) -> dict[str, Any]:
    """A verdict as the JSON report holds it, with the numbers a built-in verifier gives."""
    v: dict[str, Any] = {
        "experiment": "demo",
        "hypothesis": hypothesis,
        "treatment": "boost",
        "outcome": outcome,
        "message": f"{hypothesis} {outcome}",
        "metrics": ["score"],
        "pvalue": 0.0123,
        "pvalue_adjusted": 0.0246,
        "mean_baseline": 10.0,
        "mean_treatment": 12.5,
        "difference": 2.5,
        "ci_low": 1.25,
        "ci_high": 3.75,
        "notes": [],
        "condition": "boost",
        "comparison": None,
        "plan": None,
        "nodeid": f"experiment_demo.py::demo::{hypothesis}::boost",
    }
    return {**v, **fields}


def document(*experiments: list[dict[str, Any]], plan: bool = False) -> dict[str, Any]:
    return {
        "settings": {"plan": plan},
        "cache": CACHE,
        "experiments": [{"name": f"e{i}", "verdicts": v} for i, v in enumerate(experiments)],
    }


SKIP_MESSAGE = "no baseline 'main' yet for demo: make one with --crystallize-save main"


def rows(text: str) -> list[list[str]]:
    """The cells of every table row (not the header or the rule), in order."""
    return [
        [cell.strip() for cell in line.split(" | ")]
        for line in text.splitlines()
        if line.startswith("| ") and line != HEADER
    ]


# --- markdown() on hand-built documents -----------------------------------------------------


def test_the_first_line_is_the_tally_and_the_rows_go_most_severe_first() -> None:
    regressed = verdict(
        "vs-main",
        treatment="score",
        condition="baseline",
        comparison="regressed",
        pvalue=None,
        pvalue_adjusted=None,
    )
    text = markdown(
        document(
            [
                verdict("a"),
                verdict("b", "failed"),
                regressed,
                verdict("d", "inconclusive", pvalue_adjusted=None),
            ],
            [verdict("e", "error"), verdict("f", "skipped", message=SKIP_MESSAGE), verdict("g")],
        )
    )
    lines = text.splitlines()
    assert lines[0] == (
        "## crystallize: ❌ 1 failed · 💥 1 error · ⚠️ 1 inconclusive · 📉 1 regressed · "
        "⏭️ 1 skipped · ✅ 2 passed · 2 experiments"
    )
    assert "7 verdicts; step cache 3 hits, 5 misses." in lines
    table = rows(text)
    assert [r[1] for r in table] == ["b", "e", "d", "vs-main", "f", "a", "g"]
    assert table[0] == [
        "| demo",
        "b",
        "boost",
        "score",
        "10 → 12.5",
        "+2.5 [+1.25, +3.75]",
        "0.0123 (0.0246)",
        "❌ failed |",
    ]
    # the comparison shows the condition it compared and its own word; no p is "-"
    assert table[3][2:] == [
        "baseline",
        "score",
        "10 → 12.5",
        "+2.5 [+1.25, +3.75]",
        "-",
        "📉 regressed |",
    ]
    assert table[2][6:] == ["0.0123", "⚠️ inconclusive |"]  # no adjusted p: the raw alone
    problems = text.split("### Failed or inconclusive", 1)[1].split("### Regressed", 1)
    assert [line for line in problems[0].splitlines() if line.startswith("- ")] == [
        "- **experiment_demo.py::demo::b::boost** (failed):",
        "- **experiment_demo.py::demo::e::boost** (error):",
        "- **experiment_demo.py::demo::d::boost** (inconclusive):",
    ]
    assert "- **experiment_demo.py::demo::vs-main::boost** (regressed):" in problems[1]
    skipped = text.split("### Skipped", 1)[1].split("###", 1)[0]
    assert [line for line in skipped.splitlines() if line.startswith("- ")] == [
        f"- experiment_demo.py::demo::f::boost: {SKIP_MESSAGE}"
    ]
    assert "<details>" not in text


def test_one_experiment_and_one_verdict_are_singular_and_no_verdict_says_so() -> None:
    text = markdown(document([verdict("a")]))
    assert text.splitlines()[:3] == [
        "## crystallize: ✅ 1 passed · 1 experiment",
        "",
        "1 verdict; step cache 3 hits, 5 misses.",
    ]
    assert "###" not in text  # nothing failed, nothing to explain
    empty = markdown(document())
    assert empty.splitlines()[0] == "## crystallize: no verdicts · 0 experiments"
    assert HEADER not in empty


@pytest.mark.parametrize("passed", [15, 16])
def test_more_than_15_passed_verdicts_are_folded_under_details(passed: int) -> None:
    verdicts = [verdict(f"p{i}") for i in range(passed)]
    text = markdown(document([*verdicts[:3], verdict("x", "failed"), *verdicts[3:]]))
    names = [r[1] for r in rows(text)]
    assert names == ["x", *(f"p{i}" for i in range(passed))]  # stable within the bucket
    if passed == 15:
        assert "<details>" not in text
        assert text.count(HEADER) == 1
        return
    lines = text.splitlines()
    fold = lines.index("<details><summary>16 passed</summary>")
    # the failed row stays in sight; the passed rows get a table of their own in the fold
    assert lines[fold - 1] == ""
    assert lines[fold - 2].startswith("| demo | x |")
    assert lines[fold + 1 : fold + 3] == ["", HEADER]
    assert lines[fold + 20 : fold + 22] == ["", "</details>"]
    assert text.count(HEADER) == 2


def test_plan_mode_shows_the_replicates_needed_in_the_outcome_cell() -> None:
    def planned(name: str, needed: int | None) -> dict[str, Any]:
        return verdict(name, "skipped", plan={"replicates_needed": needed})

    text = markdown(
        document([planned("a", 24), planned("b", None), verdict("c", "error")], plan=True)
    )
    assert [r[-1] for r in rows(text)] == [
        "💥 error |",
        "⏭️ plan: 24 replicates |",
        "⏭️ plan: no estimate |",
    ]
    assert "Plan mode: the runs were a pilot;" in text


def test_names_stay_literal_in_the_table_and_messages_in_a_fence_they_cannot_close() -> None:
    v = verdict("h|<b>", "failed", condition="a*b*", metrics=["m_`x`_"], message="```\nx</b>")
    text = markdown(document([v]))
    (row,) = [line for line in text.splitlines() if line.startswith("| demo")]
    assert row.startswith("| demo | h\\|&lt;b&gt; | a\\*b\\* | m\\_\\`x\\`\\_ | ")
    assert "  ````\n  ```\n  x</b>\n  ````" in text


# --- created and SOURCE_DATE_EPOCH ---------------------------------------------------------


def test_created_is_the_time_source_date_epoch_gives() -> None:
    assert created({"SOURCE_DATE_EPOCH": "1700000000"}) == "2023-11-14T22:13:20+00:00"
    assert created({"SOURCE_DATE_EPOCH": ""}).endswith("+00:00")  # empty: now
    for bad in ("abc", "-5", "1.5", " 7", "9" * 20):
        with pytest.raises(CrystallizeUsageError) as caught:
            created({"SOURCE_DATE_EPOCH": bad})
        assert str(caught.value) == (
            f"SOURCE_DATE_EPOCH={bad!r}: expected the time of the reports as whole seconds "
            "since 1970-01-01 UTC, such as 1700000000; set it to such a number or unset it"
        )


def test_a_malformed_source_date_epoch_is_a_usage_error_before_anything_runs(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_experiment()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    result = ourtester.runpytest("--crystallize", "--crystallize-json", "r.json", *IN_PROCESS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*SOURCE_DATE_EPOCH='yesterday': expected the time of the*"])
    assert not (ourtester.path / "r.json").exists()


# --- pilot_plan ----------------------------------------------------------------------------


def test_pilot_plan_gives_numbers_and_says_when_it_cannot_plan() -> None:
    pilot = pilot_plan([1.0, 2.0, 3.0], [2.0, 2.5, 4.5], "score", (0.5, False), alpha=0.05, mde=1.0)
    sd = statistics.stdev([1.0, 0.5, 1.5])
    assert pilot.to_json() == {
        "metric": "score",
        "effect": 0.5,
        "relative": False,
        "change": 0.5,
        "power": 0.8,
        "alpha": 0.05,
        "sd": pytest.approx(sd),
        "pilot_replicates": 3,
        "replicates_needed": stats.replicates_needed(sd, 0.5, paired=True),
        "mde": 1.0,
    }
    few = pilot_plan([1.0, None], [2.0, 3.0], "score", (0.5, False), alpha=0.05, mde=None)
    assert (few.sd, few.replicates_needed) == (None, None)
    assert few.message == "plan mode: the pilot has 1 usable pairs; need 2 or more"
    zero = pilot_plan([0.0, 0.0], [1.0, 2.0], "score", (0.05, True), alpha=0.05, mde=None)
    assert zero.replicates_needed is None
    assert zero.message == (
        "plan mode: 5% of the baseline mean of 'score' (0) is no change; give an absolute "
        "effect, such as --crystallize-plan 0.5"
    )


# --- real sessions -------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@with_and_without_workers
def test_a_session_writes_the_tally_first_and_the_failure_on_top(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    dist: list[str],
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    write_experiment(experiments=TWO_EXPERIMENTS, replicates=4)
    ourtester.runpytest(
        "--crystallize", "--crystallize-md", "s.md", "--crystallize-json", "r.json", *dist
    )
    text = (ourtester.path / "s.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "## crystallize: ❌ 1 failed · ✅ 2 passed · 2 experiments"
    assert lines[2].startswith("3 verdicts; step cache ")
    # flat (delta 0) reproduces the baseline and fails: it comes first, then definition order
    assert [r[:3] for r in rows(text)] == [
        ["| demo", "by_p", "flat"],
        ["| demo", "by_p", "boost"],
        ["| steady", "by_p", "lift"],
    ]
    assert [r[-1] for r in rows(text)] == ["❌ failed |", "✅ passed |", "✅ passed |"]

    report = load(ourtester.path / "r.json")
    assert report["schema_version"] == 4
    assert report["created"] == "2023-11-14T22:13:20+00:00"
    assert report["tally"] == {
        "failed": 1,
        "error": 0,
        "inconclusive": 0,
        "regressed": 0,
        "skipped": 0,
        "passed": 2,
        "verdicts": 3,
        "experiments": 2,
    }
    verdicts = [v for e in report["experiments"] for v in e["verdicts"]]
    assert [(v["condition"], v["comparison"], v["plan"]) for v in verdicts] == [
        ("boost", None, None),
        ("flat", None, None),
        ("lift", None, None),
    ]


def test_plan_mode_shows_the_replicates_per_row_and_the_plan_in_the_json(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    write_experiment()
    result = ourtester.runpytest(
        "--crystallize",
        "--crystallize-plan=0.5",
        "--crystallize-md",
        "s.md",
        "--crystallize-json",
        "r.json",
        *IN_PROCESS,
    )
    result.assert_outcomes(passed=3, skipped=2)
    report = load(ourtester.path / "r.json")
    (experiment,) = report["experiments"]
    values: Mapping[str, list[float]] = {
        c["name"]: c["metrics"]["score"] for c in experiment["conditions"]
    }
    needed = {}
    for v in experiment["verdicts"]:
        diffs = [t - b for b, t in zip(values["baseline"], values[v["treatment"]], strict=True)]
        sd = statistics.stdev(diffs)
        plan = v["plan"]
        assert plan == {
            "metric": "score",
            "effect": 0.5,
            "relative": False,
            "change": 0.5,
            "power": 0.8,
            "alpha": 0.05,
            "sd": pytest.approx(sd, abs=1e-12),
            "pilot_replicates": 8,
            "replicates_needed": stats.replicates_needed(sd, 0.5, paired=True),
            "mde": v["mde"],
        }
        assert v["message"].startswith(
            f"plan mode (pilot of 8 replicates): {plan['replicates_needed']} replicates"
        )
        needed[v["treatment"]] = plan["replicates_needed"]
    assert needed["flat"] == 2  # every paired difference is 0
    assert report["tally"]["skipped"] == 2

    text = (ourtester.path / "s.md").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "## crystallize: ⏭️ 2 skipped · 1 experiment"
    assert [(r[2], r[-1]) for r in rows(text)] == [
        ("boost", f"⏭️ plan: {needed['boost']} replicates |"),
        ("flat", "⏭️ plan: 2 replicates |"),
    ]


def test_a_sequential_verdict_says_its_p_value_is_stage_wise_and_at_which_look() -> None:
    sequential = verdict("early", look=1, looks=4, pvalue_adjusted=None)
    fixed = verdict("whole", pvalue_adjusted=None)
    (early, whole) = rows(markdown(document([sequential, fixed])))
    assert early[6] == "0.0123 (stage-wise, look 1 of 4)"
    assert whole[6] == "0.0123"  # a fixed design's p-value is not labelled
    table = verdict_table([{"verdicts": [sequential, fixed]}], {})
    assert "0.0123 (stage-wise, look 1 of 4)" in table
    assert table.count("stage-wise") == 1
