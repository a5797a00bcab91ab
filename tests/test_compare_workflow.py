"""Comparing with a saved baseline as a workflow: definitions versus code, a baseline not
saved yet, and the words unchanged, improved and regressed of an ungated comparison.

Each round trip is a few pytester sessions in one directory: the first saves (or not), the
later ones compare after editing the experiment file the way a commit would.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from _support import with_and_without_workers

from pytest_crystallize._engine.fingerprint import code_prints, definition_fingerprint
from pytest_crystallize._store.baselines import baseline_path, save

pytestmark = pytest.mark.usefixtures("private_cache_key")

FILE = "experiment_flow.py"
KEY = f"{FILE}::flow"

# Four metrics of the baseline condition, each a function of the seed. The module constants
# scale them, so editing one is a change of code (what summarize computes), not of the
# definition. cost is judged by a hypothesis saying lower is better.
SOURCE = """\
from pytest_crystallize import (
    Experiment,
    SeedPlugin,
    data_source,
    hypothesis,
    pipeline_step,
    stats,
    treatment,
)

FACTOR = 1.0
LAT = 1.0
COST = 1.0


@data_source
def workload(ctx):
    return 100.0 + (ctx.seed % 1000) / 50.0


@pipeline_step()
def add_delta(value, ctx, *, delta=0.0, shift=0.0):
    return value + delta + shift


@pipeline_step()
def summarize(value, ctx):
    jitter = (ctx.seed % 97) / 10.0
    return value, {
        "total": FACTOR * value,
        "latency": LAT * (10.0 + jitter),
        "cost": COST * (value + jitter),
        "steady": value,
    }


@hypothesis(verifier=stats.paired_t_test(alternative="less"), metrics="cost")
def cheaper(result):
    return result["p_value"]


flow = (
    Experiment.builder("flow")
    .datasource(workload())
    .add_step(add_delta())
    .add_step(summarize())
    .treatments([treatment("lean", {"delta": -5.0})])
    .hypotheses([cheaper])
    .plugins([])
    .replicates(6)
    .build()
)
"""


@pytest.fixture
def tester(ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("COLUMNS", "400")  # -rA lines whole, not cut at 80 columns
    ourtester.makepyfile(**{FILE[:-3]: SOURCE})
    return ourtester


def edit(pytester: pytest.Pytester, *changes: tuple[str, str]) -> None:
    """Change the experiment file as a commit would; drop bytecode a same-second edit could
    leave looking fresh."""
    path = pytester.path / FILE
    text = path.read_text(encoding="utf-8")
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    shutil.rmtree(pytester.path / "__pycache__", ignore_errors=True)


def verdicts(pytester: pytest.Pytester) -> dict[str, Any]:
    document = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    (experiment,) = document["experiments"]
    return {v["nodeid"].split("::", 1)[1]: v for v in experiment["verdicts"]}


# --- what a definition covers: unit checks of the fingerprints ----------------------------


def test_only_a_definition_change_changes_the_definition_fingerprint(
    load: Callable[[str, str], ModuleType],
) -> None:
    def flow(*changes: tuple[str, str]) -> Any:
        """The experiment of SOURCE with ``changes``, loaded as one module name (a commit)."""
        text = SOURCE
        for old, new in changes:
            assert old in text
            text = text.replace(old, new)
        return load("experiment_flow", text).flow

    original = flow()
    saved = definition_fingerprint(original)
    assert len(saved) == 16
    assert list(code_prints(original)) == ["workload", "add_delta", "summarize"]

    body = flow(
        ("return value + delta + shift", "return shift + delta + value"), ("LAT = 1.0", "LAT = 2.0")
    )
    assert definition_fingerprint(body) == saved  # code, not definition
    changed = {k for k, v in code_prints(body).items() if code_prints(original)[k] != v}
    assert changed == {"add_delta", "summarize"}

    definitions = {
        "a step parameter": (".add_step(add_delta())", ".add_step(add_delta(shift=1.0))"),
        "a parameter default": ("shift=0.0):", "shift=0.5):"),
        "replicates": (".replicates(6)", ".replicates(5)"),
        "a treatment value": ('{"delta": -5.0}', '{"delta": -4.0}'),
        "a treatment name": ('"lean"', '"slim"'),
        "the seed": (".plugins([])", ".plugins([SeedPlugin(seed=7)])"),
        "a hypothesis": ('alternative="less"', 'alternative="greater"'),
        "the steps' order": (
            ".add_step(add_delta())\n    .add_step(summarize())",
            ".add_step(summarize())\n    .add_step(add_delta())",
        ),
    }
    for what, change in definitions.items():
        assert definition_fingerprint(flow(change)) != saved, what


# --- code changes are information, definition changes make a baseline stale ---------------


@with_and_without_workers
def test_an_ungated_comparison_says_unchanged_improved_or_regressed_and_which_code_changed(
    tester: pytest.Pytester, dist: list[str]
) -> None:
    saved = tester.runpytest("--crystallize", "--crystallize-save", "main", "-n", "0")
    assert saved.ret == pytest.ExitCode.OK
    # A commit: add_delta rewritten (same numbers), summarize scales three metrics.
    edit(
        tester,
        ("return value + delta + shift", "return shift + delta + value"),
        ("FACTOR = 1.0", "FACTOR = 1.1"),
        ("LAT = 1.0", "LAT = 1.2"),
        ("COST = 1.0", "COST = 1.1"),
    )
    compare = ["--crystallize", "--crystallize-compare", "main", "-rA", *dist]
    lower = ["-o", "crystallize_lower_is_better=latency", "--crystallize-json", "report.json"]
    result = tester.runpytest(*compare, *lower)
    assert result.ret == pytest.ExitCode.OK  # an ungated comparison never fails
    assumed = (
        "higher is better (assumed; if lower is, say so with --crystallize-lower-is-better "
        "total or the ini setting crystallize_lower_is_better)"
    )
    code = "code changed since 'main' in 2 steps (add_delta, summarize)"
    result.stdout.fnmatch_lines_random(
        [
            f"PASSED p=* {KEY}::vs-main::total - 'total' now vs baseline 'main': improved: "
            f"change +1* [[]+*, +*], paired t-test: p=* < alpha=0.05, n=6 now vs 6 saved; "
            f"{assumed}",
            f"PASSED p=* {KEY}::vs-main::latency - 'latency' now vs baseline 'main': regressed: "
            "*; lower is better (crystallize_lower_is_better)",
            f"PASSED p=* {KEY}::vs-main::cost - 'cost' now vs baseline 'main': regressed: "
            "*; lower is better (hypothesis 'cheaper')",
            f"PASSED * {KEY}::vs-main::steady - 'steady' now vs baseline 'main': unchanged: *",
            f"PASSED * {KEY}::cheaper::lean - *",
        ]
    )
    assert "stale" not in result.stdout.str()
    shown = verdicts(tester)
    words = {m: shown[f"flow::vs-main::{m}"]["comparison"] for m in ("total", "latency", "cost")}
    assert words == {"total": "improved", "latency": "regressed", "cost": "regressed"}
    for metric in ("total", "latency", "cost", "steady"):
        verdict = shown[f"flow::vs-main::{metric}"]
        assert (verdict["outcome"], verdict["condition"]) == ("passed", "baseline")
        assert verdict["notes"] == [code]
        assert f"\n  note: {code}" in verdict["message"]
    assert shown["flow::vs-main::steady"]["comparison"] == "unchanged"
    assert "is better" not in shown["flow::vs-main::steady"]["message"]  # no word to explain
    assert shown["flow::cheaper::lean"]["comparison"] is None

    # A definition change (a step parameter) makes the comparison stale, and says what a
    # definition covers.
    edit(tester, (".add_step(add_delta())", ".add_step(add_delta(shift=0.5))"))
    stale = tester.runpytest(*compare[:-2], "-n", "0", "--crystallize-json", "report.json")
    assert stale.ret == pytest.ExitCode.OK
    note = verdicts(tester)["flow::vs-main::steady"]["notes"][0]
    assert note == (
        "stale baseline: 'main' was saved from a different definition of 'flow' (data "
        "source, steps' names, order or parameters, initial context, conditions, replicates, "
        "seed, hypotheses or upstream experiments changed since); save it again "
        "to compare like with like"
    )


# --- a baseline not saved yet is a state -------------------------------------------------


@with_and_without_workers
def test_a_baseline_not_saved_yet_skips_the_comparison_or_fails_it_when_asked(
    tester: pytest.Pytester, dist: list[str]
) -> None:
    message = (
        "no baseline 'main' yet for flow: make one with --crystallize-save main "
        "(on the commit to compare with)"
    )
    # No main.json at all; the gate names a metric no comparison had: no "unknown metric".
    gate = ["--crystallize-compare-fail", "total:-5%", "--crystallize-json", "report.json"]
    skipped = tester.runpytest(
        "--crystallize", "--crystallize-compare", "main", "-rA", *gate, *dist
    )
    assert skipped.ret == pytest.ExitCode.OK
    assert skipped.parseoutcomes()["skipped"] == 1
    skipped.stdout.fnmatch_lines_random(
        [
            f"SKIPPED [[]1[]] {FILE}:*: flow::vs-main::baseline: {message}",
            f"PASSED p=* {KEY}::cheaper::lean - *",
        ]
    )
    assert "names metric" not in skipped.stdout.str()
    verdict = verdicts(tester)["flow::vs-main::baseline"]
    assert (verdict["outcome"], verdict["condition"]) == ("skipped", "baseline")

    # main.json holds another experiment only; crystallize_compare_missing = fail (decided on
    # the controller, as the skip above: one process is enough from here)
    save(baseline_path(tester.path, "main"), {"experiment_other.py::other": {}})
    failed = tester.runpytest(
        "--crystallize",
        "--crystallize-compare",
        "main",
        "-o",
        "crystallize_compare_missing=fail",
        "-rA",
        "-n",
        "0",
    )
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    assert failed.parseoutcomes()["errors"] == 1
    failed.stdout.fnmatch_lines([f"ERROR {KEY}::vs-main::baseline - {message}"])

    # a typo in a gate's metric is still caught: no experiment records it
    typo = tester.runpytest(
        "--crystallize",
        "--crystallize-compare",
        "main",
        "--crystallize-compare-fail",
        "totl:-5%",
        "-n",
        "0",
    )
    assert typo.ret == pytest.ExitCode.TESTS_FAILED
    typo.stdout.fnmatch_lines(
        [
            "*--crystallize-compare-fail names metric 'totl', which no comparison with baseline "
            "'main' had and no experiment without one recorded (metrics: cost, latency, steady, "
            "total); fix the name*"
        ]
    )


BAD_FILES = {
    '{"format": 1, "experiments": {}}': "*main.json has format 1, from an older "
    "pytest-crystallize (it compared code, not definitions); save it again with "
    "--crystallize-save main on the commit to compare with",
    '{"format": 9}': "*main.json has an unknown format (9; this version reads format 2); save "
    "it again with --crystallize-save main",
    "{not json": "*main.json is not valid JSON (*); save it again",
}


@with_and_without_workers
def test_a_baseline_file_that_cannot_be_read_is_a_usage_error_until_saved_again(
    tester: pytest.Pytester, dist: list[str]
) -> None:
    path = baseline_path(tester.path, "main")
    path.parent.mkdir(parents=True)
    for content, expected in BAD_FILES.items():
        path.write_text(content, encoding="utf-8")
        result = tester.runpytest("--crystallize", "--crystallize-compare", "main", *dist)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([expected])
    # saving again is the remedy: it replaces the file
    assert tester.runpytest("--crystallize", "--crystallize-save", "main", "-n", "0").ret == 0
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == 2
