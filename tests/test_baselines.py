"""Baselines across commits: --crystallize-save, --crystallize-compare and gates.

A round trip is two (or more) pytester runs in one directory: the first saves, the later ones
compare after editing the experiment file the way a commit would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _support import (
    builder_source,
    replicate_seeds,
    seeded_source,
    with_and_without_workers,
    workload,
)

from pytest_crystallize._engine.errors import CrystallizeUsageError
from pytest_crystallize._store.baselines import baseline_path, parse_gate

FILE = "experiment_base.py"
KEY = f"{FILE}::base"
REPLICATES = 8

# Two metrics, both functions of the seed: "total" (gated in the tests) and "latency"
# (informational). FACTOR (1.0 in the shared header) scales total: 0.90 is the deliberate 10%
# regression. The tests edit the definition where it says FACTOR, .treatments and .plugins.
EXPERIMENT = seeded_source(
    """
    @pipeline_step()
    def run(value, ctx, *, boost=0.0):
        total = FACTOR * (value + boost)
        return total, {"total": total, "latency": 10.0 + (ctx.seed % 97) / 10.0}
    """,
    builder_source(
        "experiment",
        name="base",
        source="workload()",
        steps=["run()"],
        treatments='treatment("boosted", {"boost": 5.0})',
        hypotheses="faster",
        calls=[".plugins([])"],
        replicates=REPLICATES,
    ),
)


def seeds(root: int | None = None) -> list[int]:
    return replicate_seeds("base", REPLICATES, root)


def total(seed: int, boost: float = 0.0) -> float:
    return 1.0 * (workload(seed) + boost)


def latency(seed: int) -> float:
    return 10.0 + (seed % 97) / 10.0


@pytest.fixture
def tester(ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("COLUMNS", "400")  # -rA lines whole, not cut at 80 columns
    ourtester.makepyfile(**{FILE[:-3]: EXPERIMENT})
    return ourtester


def edit(pytester: pytest.Pytester, old: str, new: str) -> None:
    """Change the experiment file as a commit would; drop bytecode a same-second edit could
    leave looking fresh."""
    path = pytester.path / FILE
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    shutil.rmtree(pytester.path / "__pycache__", ignore_errors=True)


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    document = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    (experiment,) = document["experiments"]
    return {v["nodeid"].split("::", 1)[1]: v for v in experiment["verdicts"]}


# --- parse_gate ---------------------------------------------------------------------------


def test_parse_gate_reads_metric_direction_and_relative_or_absolute_margin() -> None:
    assert parse_gate("total:-5%") == ("total", pytest.approx(0.05), True, True)
    assert parse_gate("latency:+0.2") == ("latency", pytest.approx(0.2), False, False)
    assert parse_gate(" accuracy:-.5% ") == ("accuracy", pytest.approx(0.005), True, True)


@pytest.mark.parametrize("text", ["total", "total:5%", "total:-0%", "total:-", "total:-5%%"])
def test_parse_gate_rejects_a_gate_without_sign_or_margin_with_a_clear_message(
    text: str,
) -> None:
    with pytest.raises(CrystallizeUsageError) as caught:
        parse_gate(text)
    message = str(caught.value)
    assert "--crystallize-compare-fail takes METRIC:-MARGIN or METRIC:+MARGIN" in message
    assert "'total:-5%'" in message  # an example of the right spelling
    assert repr(text) in message


def test_a_bad_gate_on_the_command_line_is_a_usage_error(tester: pytest.Pytester) -> None:
    result = tester.runpytest("--crystallize", "--crystallize-compare-fail", "total:5%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--crystallize-compare-fail takes METRIC:-MARGIN*'total:5%'*"])


def test_a_baseline_name_must_be_a_plain_file_name(tmp_path: Path) -> None:
    assert baseline_path(tmp_path, "main-1.2_x") == (
        tmp_path / ".crystallize" / "baselines" / "main-1.2_x.json"
    )
    with pytest.raises(CrystallizeUsageError, match="a baseline name may hold"):
        baseline_path(tmp_path, "../outside")


# --- save, then compare -------------------------------------------------------------------


@with_and_without_workers
def test_save_then_compare_an_unchanged_run_passes_and_a_10_percent_regression_fails(
    tester: pytest.Pytester, dist: list[str]
) -> None:
    saved = tester.runpytest(
        "--crystallize", "--crystallize-save", "main", "--crystallize-json", "report.json", *dist
    )
    assert saved.ret == pytest.ExitCode.OK
    path = tester.path / ".crystallize" / "baselines" / "main.json"
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["format"] == 2
    assert list(stored["experiments"]) == [KEY]
    entry = stored["experiments"][KEY]
    assert len(entry["definition"]) == 16  # what makes runs comparable, code aside
    assert sorted(entry["code"]) == ["run", "workload"]  # each part's code digest
    assert all(len(digest) == 16 for digest in entry["code"].values())
    assert entry["metrics"] == ["latency", "total"]
    assert entry["replicates"] == REPLICATES
    assert entry["conditions"] == {
        "baseline": {
            "seeds": seeds(),
            "metrics": {
                "total": [total(s) for s in seeds()],
                "latency": [latency(s) for s in seeds()],
            },
        },
        "boosted": {
            "seeds": seeds(),
            "metrics": {
                "total": [total(s, 5.0) for s in seeds()],
                "latency": [latency(s) for s in seeds()],
            },
        },
    }
    assert [p.name for p in path.parent.iterdir()] == ["main.json"]  # no temporary files

    gate = ["--crystallize-compare", "main", "--crystallize-compare-fail", "total:-5%"]
    compare = ["--crystallize", *gate, "-rA", "--crystallize-json", "report.json", *dist]
    unchanged = tester.runpytest(*compare)
    assert unchanged.ret == pytest.ExitCode.OK
    unchanged.stdout.fnmatch_lines_random(
        [
            f"PASSED p=* {KEY}::vs-main::total - 'total' now vs baseline 'main': paired non-inf*",
            f"PASSED * {KEY}::vs-main::latency - 'latency' now vs baseline 'main': unchanged: *",
        ]
    )
    assert "stale baseline" not in unchanged.stdout.str()
    verdicts = report(tester)
    now = verdicts["base::vs-main::total"]
    assert (now["hypothesis"], now["treatment"], now["outcome"]) == ("vs-main", "total", "passed")
    assert (now["condition"], now["comparison"]) == ("baseline", None)  # a gate decides
    assert now["verifier"] == "paired non-inferiority t-test"
    assert (now["difference"], now["ci_low"], now["ci_high"]) == (0.0, 0.0, 0.0)
    assert now["notes"] == []
    steady = verdicts["base::vs-main::latency"]
    assert (steady["outcome"], steady["comparison"]) == ("passed", "unchanged")

    edit(tester, "FACTOR = 1.0", "FACTOR = 0.90")  # the deliberate 10% regression
    regressed = tester.runpytest(*compare)
    assert regressed.ret == pytest.ExitCode.TESTS_FAILED
    regressed.stdout.fnmatch_lines_random(
        [
            f"FAILED p=* {KEY}::vs-main::total - 'total' now vs baseline 'main'*",
            f"PASSED p=* {KEY}::vs-main::latency - *",
            f"PASSED p=* {KEY}::faster::boosted - *",
        ]
    )
    regressed.stdout.fnmatch_lines(
        [
            "*'total' now vs baseline 'main': paired non-inferiority t-test: 90% CI of the change "
            "[[]-10.?%, -?.?%] lies beyond the margin -5.0%*"
        ]
    )
    verdict = report(tester)["base::vs-main::total"]
    assert verdict["outcome"] == "failed"
    mean_before = sum(total(s) for s in seeds()) / REPLICATES
    assert verdict["difference"] == pytest.approx(-0.1 * mean_before, rel=1e-9)
    assert "-5.0%" in verdict["message"]
    # FACTOR is read by the step: its code changed, not the definition; the comparison says so
    assert verdict["notes"] == ["code changed since 'main' in 1 step (run)"]

    # without a gate the same comparison says what changed, and never fails
    # (decided on the controller, as above: one process is enough)
    informational = tester.runpytest(
        "--crystallize", "--crystallize-compare", "main", "-rA", "-n", "0"
    )
    assert informational.ret == pytest.ExitCode.OK
    informational.stdout.fnmatch_lines_random(
        [
            f"PASSED p=* {KEY}::vs-main::total - 'total' now vs baseline 'main': regressed: "
            "change -1* [[]-1*, -1*], paired t-test: p=* < alpha=0.05, n=8 now vs 8 saved; "
            "higher is better (assumed; *",
            f"PASSED * {KEY}::vs-main::latency - 'latency' now vs baseline 'main': unchanged: *",
        ]
    )


def test_a_changed_definition_is_flagged_as_a_stale_baseline(tester: pytest.Pytester) -> None:
    tester.runpytest("--crystallize", "--crystallize-save", "main")
    edit(tester, '{"boost": 5.0}', '{"boost": 6.0}')  # a treatment changed; baseline did not
    result = tester.runpytest(
        "--crystallize",
        "--crystallize-compare",
        "main",
        "--crystallize-compare-fail",
        "total:-5%",
        "--crystallize-json",
        "report.json",
    )
    assert result.ret == pytest.ExitCode.OK  # the baseline condition's numbers are the same
    result.stdout.fnmatch_lines(
        [
            "*base*vs-main*total*PASSED !",
            "! base::vs-main::latency: stale baseline: 'main' was saved from a different "
            "definition of 'base'*save it again*",
            "! base::vs-main::total: stale baseline: 'main' was saved from a different "
            "definition of 'base'*save it again*",
        ]
    )
    # the note travels with the verdict into the report
    for verdict in report(tester).values():
        if verdict["hypothesis"] == "vs-main":
            assert [n[:28] for n in verdict["notes"]] == ["stale baseline: 'main' was s"]
            assert "\n  note: stale baseline" in verdict["message"]
    saved_again = tester.runpytest("--crystallize", "--crystallize-save", "main")
    assert saved_again.ret == pytest.ExitCode.OK
    fresh = tester.runpytest("--crystallize", "--crystallize-compare", "main")
    assert "stale baseline" not in fresh.stdout.str()


def test_comparison_is_paired_when_seeds_match_and_unpaired_when_they_differ(
    tester: pytest.Pytester,
) -> None:
    tester.runpytest("--crystallize", "--crystallize-save", "main")
    gate = ["--crystallize-compare", "main", "--crystallize-compare-fail", "total:-5%"]

    tester.runpytest("--crystallize", *gate, "--crystallize-json", "report.json")
    verdicts = report(tester)
    assert verdicts["base::vs-main::total"]["verifier"] == "paired non-inferiority t-test"
    assert verdicts["base::vs-main::latency"]["verifier"] == "paired t-test"

    # fewer replicates: the counts differ, so the replicates are not compared pair by pair
    tester.runpytest(
        "--crystallize", *gate, "--crystallize-replicates", "4", "--crystallize-json", "report.json"
    )
    verdicts = report(tester)
    assert verdicts["base::vs-main::total"]["verifier"] == "non-inferiority t-test"
    assert "n=4 now vs 8 saved" in verdicts["base::vs-main::total"]["message"]
    assert verdicts["base::vs-main::latency"]["verifier"] == "Welch t-test"

    # another root seed: every replicate's seed differs
    edit(tester, ".plugins([])", ".plugins([SeedPlugin(seed=12345)])")
    tester.runpytest("--crystallize", *gate, "--crystallize-json", "report.json")
    verdicts = report(tester)
    now = verdicts["base::vs-main::total"]
    assert now["verifier"] == "non-inferiority t-test"
    assert "paired" not in now["message"]
    assert "n=8 now vs 8 saved" in now["message"]
    assert verdicts["base::vs-main::latency"]["verifier"] == "Welch t-test"
    document = json.loads((tester.path / "report.json").read_text())
    assert document["experiments"][0]["conditions"][0]["seeds"] == seeds(12345)


def test_a_gate_on_a_metric_no_experiment_records_is_not_silently_ignored(
    tester: pytest.Pytester,
) -> None:
    """A typo in a gate's metric must not turn the gate off without a word."""
    tester.runpytest("--crystallize", "--crystallize-save", "main")
    edit(tester, "FACTOR = 1.0", "FACTOR = 0.90")
    result = tester.runpytest(
        "--crystallize", "--crystallize-compare", "main", "--crystallize-compare-fail", "totl:-5%"
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret != pytest.ExitCode.OK
    assert "totl" in output
