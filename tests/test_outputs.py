"""The session's CI outputs: the JSON report (checked against docs/report-schema.json), the
Markdown summary and $GITHUB_STEP_SUMMARY, JUnit XML properties, and the live progress line.

The experiment's metric is a pure function of the replicate's seed, so every number in the
outputs can be recomputed here: the seeds from the seed derivation, the values from the seeds,
and the verdict's statistics with scipy.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import scipy.stats
from _support import (
    IN_PROCESS,
    NO_XDIST,
    builder_source,
    replicate_seeds,
    seeded_boost,
    seeded_source,
    treatments_source,
    with_and_without_workers,
    workload,
)

from pytest_crystallize._harness import terminal as _reporting
from pytest_crystallize._harness.terminal import LiveProgress

DOCS = Path(__file__).resolve().parent.parent / "docs"
SCHEMA = json.loads((DOCS / "report-schema.json").read_text(encoding="utf-8"))
REPLICATES = 6

# "speed": the total is a function of the seed; "boosted" adds a seed-dependent amount (a
# clear paired effect), "same" adds nothing (every paired difference is 0: a failed verdict).
# The step is cacheable, so the cache counters are known: 3 conditions x 6 runs = 18 misses.
# "odd": replicates 0 and 1 record inf and NaN, which the report must write as null.
ODD = """

@data_source
def odd_source(ctx):
    return (float("inf"), float("nan"), 3.0, 4.0)[ctx["replicate"]]


@pipeline_step()
def measure(value, ctx, *, shift=0.0):
    return value, {"ratio": value + shift}


@hypothesis(verifier=stats.welch_t_test(), metrics="ratio")
def ratio_changes(result):
    return result["p_value"]
"""
EXPERIMENT = seeded_source(
    """
    @pipeline_step(cacheable=True)
    def run(value, ctx, *, boost=0.0):
        total = value + boost * (1.0 + (ctx.seed // 1000 % 10) / 10.0)
        return total, {"total": total}
    """,
    builder_source(
        "speed",
        source="workload()",
        steps=["run()"],
        treatments=treatments_source({"boosted": 5.0, "same": 0.0}, key="boost"),
        hypotheses="faster",
        replicates=REPLICATES,
    ),
    ODD,
    builder_source(
        "odd",
        source="odd_source()",
        steps=["measure()"],
        treatments=treatments_source({"shifted": 1.0}, key="shift"),
        hypotheses="ratio_changes",
        replicates=4,
    ),
)
FILE = "experiment_speed.py"


def total(seed: int, boost: float = 0.0) -> float:
    """What the experiment's step computes (the same expression, so the same float)."""
    return workload(seed) + seeded_boost(seed, boost)


def expected_paired(boost: float) -> dict[str, float]:
    """The paired t-test of "boosted" vs baseline, computed here with scipy."""
    s = replicate_seeds("speed", REPLICATES)
    base = [total(x) for x in s]
    treated = [total(x, boost) for x in s]
    diffs = [t - b for b, t in zip(base, treated, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    t975 = scipy.stats.t.ppf(0.975, n - 1)
    res = scipy.stats.ttest_rel(treated, base)
    return {
        "statistic": float(res.statistic),
        "pvalue": float(res.pvalue),
        "difference": mean,
        "ci_low": mean - t975 * se,
        "ci_high": mean + t975 * se,
        "effect_size": mean / sd,
        "mde": (t975 + scipy.stats.t.ppf(0.8, n - 1)) * se,
        "mean_baseline": sum(base) / n,
        "mean_treatment": sum(treated) / n,
    }


def no_constants(name: str) -> Any:
    raise ValueError(f"the report holds {name}, which is not JSON")


def load_report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constants)


@pytest.fixture
def tester(ourtester: pytest.Pytester) -> pytest.Pytester:
    ourtester.makepyfile(**{FILE[:-3]: EXPERIMENT})
    return ourtester


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_checkout(path: Path) -> str:
    """A git repository tracking the experiment and the ini, ignoring what runs write."""
    (path / ".gitignore").write_text("/*\n!/.gitignore\n!/tox.ini\n!/experiment_*.py\n")
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "experiment")
    return git(path, "rev-parse", "HEAD")


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


# --- a small JSON Schema validator --------------------------------------------------------

# The keywords docs/report-schema.json may use: the validator understands every one of them.
KEYWORDS = {"$schema", "title", "description", "$defs", "$ref", "type", "enum"}
KEYWORDS |= {"required", "properties", "additionalProperties", "items"}
_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "null": type(None)}


def _is(value: Any, name: str) -> bool:
    if name in ("integer", "number"):
        kinds = int if name == "integer" else (int, float)
        return isinstance(value, kinds) and not isinstance(value, bool)
    return isinstance(value, bool if name == "boolean" else _TYPES[name])


def validate(value: Any, schema: dict[str, Any], root: Any = None, at: str = "$") -> list[str]:
    """The errors of ``value`` against ``schema`` (draft 2020-12 semantics, for KEYWORDS)."""
    root = schema if root is None else root
    if "$ref" in schema:  # only local references: "#/$defs/name"
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return validate(value, target, root, at)
    if "type" in schema:
        names = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
        if not any(_is(value, name) for name in names):
            return [f"{at}: expected {' or '.join(names)}, got {type(value).__name__} {value!r}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        missing = [key for key in schema.get("required", ()) if key not in value]
        errors += [f"{at}: missing required key {key!r}" for key in missing]
        known, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in known:
                errors += validate(item, known[key], root, f"{at}.{key}")
            elif extra is False:
                errors.append(f"{at}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                errors += validate(item, extra, root, f"{at}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], root, f"{at}[{i}]")
    return errors


def schema_keywords(schema: Any, inside_properties: bool = False) -> set[str]:
    """Every keyword the schema uses (names of properties and $defs are not keywords)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, sub in schema.items():
            if not inside_properties:
                found.add(key)
            if key in ("properties", "$defs") and not inside_properties:
                for each in sub.values():
                    found |= schema_keywords(each)
            elif key not in ("enum", "required") and not inside_properties:
                found |= schema_keywords(sub)
    elif isinstance(schema, list):
        for sub in schema:
            found |= schema_keywords(sub)
    return found


def schema_property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        names |= set(schema.get("properties", {})) | set(schema.get("required", []))
        for sub in schema.values():
            names |= schema_property_names(sub)
    return names


def test_the_schema_uses_only_keywords_the_validator_understands() -> None:
    assert schema_keywords(SCHEMA) <= KEYWORDS
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_markdown_documentation_describes_every_field_of_the_schema() -> None:
    text = (DOCS / "report-schema.md").read_text(encoding="utf-8")
    missing = sorted(name for name in schema_property_names(SCHEMA) if f"`{name}`" not in text)
    assert missing == []
    assert "schema_version" in text
    assert "```json" in text  # the abridged example


@with_and_without_workers
def test_a_real_report_validates_against_the_documented_schema(
    tester: pytest.Pytester, dist: list[str]
) -> None:
    tester.runpytest("--crystallize", "--crystallize-json", "report.json", *dist)
    document = load_report(tester.path / "report.json")
    assert validate(document, SCHEMA) == []
    # the report has the parts that exercise the schema: nulls, failed and passed verdicts
    verdicts = [v for e in document["experiments"] for v in e["verdicts"]]
    assert {v["outcome"] for v in verdicts} == {"passed", "failed"}
    assert any(v["pvalue_adjusted"] is None for v in verdicts)


def test_the_validator_rejects_a_missing_key_a_wrong_type_and_an_unknown_key(
    tester: pytest.Pytester,
) -> None:
    tester.runpytest("--crystallize", "--crystallize-json", "report.json", *IN_PROCESS)
    document = load_report(tester.path / "report.json")
    assert validate(document, SCHEMA) == []

    missing = json.loads(json.dumps(document))
    del missing["experiments"][0]["verdicts"][0]["pvalue"]
    del missing["cache"]
    assert validate(missing, SCHEMA) == [
        "$: missing required key 'cache'",
        "$.experiments[0].verdicts[0]: missing required key 'pvalue'",
    ]

    wrong = json.loads(json.dumps(document))
    wrong["experiments"][0]["verdicts"][0]["pvalue"] = "0.01"
    wrong["experiments"][0]["conditions"][0]["seeds"][1] = 1.5
    wrong["environment"]["git"] = "abc123"
    wrong["schema_version"] = True  # a bool is not an integer in JSON
    errors = validate(wrong, SCHEMA)
    assert len(errors) == 4, errors
    assert any(
        e.startswith("$.experiments[0].verdicts[0].pvalue: expected number or null") for e in errors
    )
    assert any(
        e.startswith("$.experiments[0].conditions[0].seeds[1]: expected integer") for e in errors
    )
    assert any(e.startswith("$.environment.git: expected object or null") for e in errors)
    assert any(e.startswith("$.schema_version: expected integer") for e in errors)

    unknown = json.loads(json.dumps(document))
    unknown["experiments"][0]["verdicts"][0]["outcome"] = "maybe"
    unknown["cache"]["evictions"] = 0
    assert validate(unknown, SCHEMA) == [
        "$.cache: unexpected key 'evictions'",
        "$.experiments[0].verdicts[0].outcome: 'maybe' is not one of "
        "['passed', 'failed', 'inconclusive', 'error', 'skipped']",
    ]


# --- the JSON report ----------------------------------------------------------------------


@needs_git
@with_and_without_workers
def test_the_json_report_holds_runs_seeds_verdicts_cache_and_environment(
    tester: pytest.Pytester, dist: list[str]
) -> None:
    head = make_checkout(tester.path)
    result = tester.runpytest("--crystallize", "--crystallize-json", "out/report.json", *dist)
    assert result.parseoutcomes()["failed"] == 2  # "same" and "odd"; the rest pass
    path = tester.path / "out" / "report.json"
    document = load_report(path)

    # written atomically: no temporary file is left next to it, and it is readable by others
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask

    assert document["schema_version"] == 4
    assert document["created"].endswith("+00:00")
    assert document["settings"] == {
        "correction": "holm",
        "inconclusive": "fail",
        "compare": None,
        "compare_fail": [],
        "plan": False,
    }
    env = document["environment"]
    assert env["python"] == platform.python_version()
    assert env["implementation"] == sys.implementation.name
    assert env["platform"] == platform.platform()
    for name in ("pytest-crystallize", "pytest", "pluggy", "pytest-xdist", "scipy", "numpy"):
        assert env["packages"][name] == metadata.version(name)
    assert env["git"] == {"commit": head, "dirty": False}

    cache = document["cache"]
    assert (cache["hits"], cache["misses"], cache["rejected"]) == (0, 3 * REPLICATES, 0)
    assert cache["bytes_written"] > 0

    speed, odd = document["experiments"]
    assert (speed["name"], speed["file"], speed["replicates"]) == ("speed", FILE, REPLICATES)
    assert len(speed["fingerprint"]) == 16
    expected_seeds = replicate_seeds("speed", REPLICATES)
    boosts = {"baseline": 0.0, "boosted": 5.0, "same": 0.0}
    assert [c["name"] for c in speed["conditions"]] == list(boosts)
    for condition in speed["conditions"]:
        assert condition["seeds"] == expected_seeds
        assert condition["failed_replicates"] == []
        assert condition["metrics"] == {
            "total": [total(s, boosts[condition["name"]]) for s in expected_seeds]
        }

    boosted, same = speed["verdicts"]
    want = expected_paired(5.0)
    assert boosted["nodeid"] == f"{FILE}::speed::faster::boosted"
    assert (boosted["outcome"], boosted["reported_as"]) == ("passed", "passed")
    assert (boosted["experiment"], boosted["hypothesis"], boosted["treatment"]) == (
        "speed",
        "faster",
        "boosted",
    )
    assert boosted["verifier"] == boosted["output"]["test"] == "paired t-test"
    assert boosted["metrics"] == ["total"]
    assert boosted["output"]["statistic"] == pytest.approx(want["statistic"], rel=1e-9)
    assert boosted["pvalue"] == pytest.approx(want["pvalue"], rel=1e-9)
    # Holm over the family of two: the smaller p-value doubles, the larger (1) stays 1
    assert boosted["pvalue_adjusted"] == pytest.approx(2 * want["pvalue"], rel=1e-9)
    assert (boosted["correction"], boosted["alpha"]) == ("holm", 0.05)
    assert (boosted["n_baseline"], boosted["n_treatment"]) == (REPLICATES, REPLICATES)
    for key in ("mean_baseline", "mean_treatment", "difference", "ci_low", "ci_high", "mde"):
        assert boosted[key] == pytest.approx(want[key], rel=1e-9), key
    assert boosted["effect_size"] == pytest.approx(want["effect_size"], rel=1e-9)
    assert boosted["effect_size_name"] == "d_z"
    assert boosted["notes"] == []
    assert boosted["message"].startswith("paired t-test: p=")
    assert "adjusted" in boosted["message"]

    assert (same["outcome"], same["reported_as"]) == ("failed", "failed")
    assert (same["pvalue"], same["pvalue_adjusted"]) == (1.0, 1.0)
    assert (same["difference"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)
    assert "every paired difference is exactly 0" in same["message"]

    # non-finite metric values are null in the file, and the verdict says why it failed
    assert [c["metrics"]["ratio"] for c in odd["conditions"]] == [
        [None, None, 3.0, 4.0],
        [None, None, 4.0, 5.0],
    ]
    (verdict,) = odd["verdicts"]
    assert verdict["outcome"] == "failed"
    assert verdict["pvalue_adjusted"] is None  # a family of one is not adjusted
    assert "invalid data: 4 NaN or infinite metric values" in verdict["message"]


@needs_git
def test_the_json_report_marks_a_dirty_checkout_and_has_no_git_outside_one(
    tester: pytest.Pytester,
) -> None:
    outside = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tester.path, capture_output=True, check=False
    )
    tester.runpytest("--crystallize", "--crystallize-json", "report.json", *IN_PROCESS)
    if outside.returncode != 0:  # the temporary directory is not inside some checkout
        assert load_report(tester.path / "report.json")["environment"]["git"] is None

    head = make_checkout(tester.path)
    with (tester.path / FILE).open("a") as handle:
        handle.write("# an uncommitted edit\n")
    tester.runpytest("--crystallize", "--crystallize-json", "report.json", *IN_PROCESS)
    git_state = load_report(tester.path / "report.json")["environment"]["git"]
    assert git_state == {"commit": head, "dirty": True}


# --- Markdown and the GitHub step summary -------------------------------------------------


def _row(v: dict[str, Any], icon: str) -> str:
    change = (
        "-"  # nothing estimated (NaN data): no made-up "+0 [+0, +0]"
        if v["difference"] is None
        else f"{v['difference']:+.3g} [{v['ci_low']:+.3g}, {v['ci_high']:+.3g}]"
    )
    means = (
        "-"
        if v["mean_baseline"] is None and v["mean_treatment"] is None
        else f"{v['mean_baseline']:.4g} → {v['mean_treatment']:.4g}"
    )
    adjusted = "" if v["pvalue_adjusted"] is None else f" ({v['pvalue_adjusted']:.3g})"
    return (
        f"| {v['experiment']} | {v['hypothesis']} | {v['condition']} | {', '.join(v['metrics'])} "
        f"| {means} | {change} | {v['pvalue']:.3g}{adjusted} | {icon} {v['outcome']} |"
    )


@with_and_without_workers
def test_the_markdown_summary_has_a_row_per_verdict_and_the_failures_with_messages(
    tester: pytest.Pytester, dist: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    tester.runpytest(
        "--crystallize", "--crystallize-md", "summary.md", "--crystallize-json", "r.json", *dist
    )
    text = (tester.path / "summary.md").read_text(encoding="utf-8")
    document = load_report(tester.path / "r.json")
    boosted, same = document["experiments"][0]["verdicts"]
    (odd,) = document["experiments"][1]["verdicts"]
    want = expected_paired(5.0)

    lines = text.splitlines()
    assert lines[0] == "## crystallize: ❌ 2 failed · ✅ 1 passed · 2 experiments"
    assert "3 verdicts; step cache 0 hits, 18 misses." in lines
    header = lines.index(
        "| experiment | hypothesis | treatment | metric | means (baseline → treatment) "
        "| change [95% CI] | p (adj) | outcome |"
    )
    rows = lines[header + 2 : header + 5]
    # the failed verdicts first, in report order; the passed one last
    assert rows == [_row(same, "❌"), _row(odd, "❌"), _row(boosted, "✅")]
    # the numbers in the row are the experiment's: means, change and CI, raw and adjusted p
    change = f"{want['difference']:+.3g} [{want['ci_low']:+.3g}, {want['ci_high']:+.3g}]"
    means = f"{want['mean_baseline']:.4g} → {want['mean_treatment']:.4g}"
    assert rows[2] == (
        f"| speed | faster | boosted | total | {means} | {change} | {want['pvalue']:.3g} "
        f"({2 * want['pvalue']:.3g}) | ✅ passed |"
    )
    assert rows[0].startswith("| speed | faster | same | total | ")
    assert rows[0].endswith(" | +0 [+0, +0] | 1 (1) | ❌ failed |")
    assert rows[1].endswith("| 1 | ❌ failed |")

    problems = text.split("### Failed or inconclusive", 1)[1]
    assert f"**{FILE}::speed::faster::boosted**" not in problems
    assert f"- **{FILE}::speed::faster::same** (failed):" in problems
    assert f"- **{FILE}::odd::ratio_changes::shifted** (failed):" in problems
    assert "every paired difference is exactly 0" in problems
    assert "invalid data: 4 NaN or infinite metric values" in problems
    assert [p.name for p in tester.path.glob(".summary.md*")] == []


@with_and_without_workers
def test_the_summary_is_appended_to_the_github_step_summary_unless_opted_out(
    tester: pytest.Pytester, dist: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = tester.path / "github" / "step_summary.md"
    step_summary.parent.mkdir()
    step_summary.write_text("# an earlier step\n\nits own text\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))

    # without --crystallize-md the summary still goes to GitHub, once (not once per worker)
    tester.runpytest("--crystallize", "--crystallize-no-cache", *dist)
    appended = step_summary.read_text(encoding="utf-8")
    assert appended.startswith(
        "# an earlier step\n\nits own text\n## crystallize: ❌ 2 failed · ✅ 1 passed · "
        "2 experiments\n"
    )
    assert appended.count("## crystallize") == 1
    assert f"- **{FILE}::speed::faster::same** (failed):" in appended

    # with it, the file gets the same text; opting out leaves the step summary alone
    tester.runpytest(
        "--crystallize",
        "--crystallize-no-cache",
        "--crystallize-md",
        "summary.md",
        "--crystallize-no-step-summary",
        *dist,
    )
    assert step_summary.read_text(encoding="utf-8") == appended
    written = (tester.path / "summary.md").read_text(encoding="utf-8")
    assert appended == "# an earlier step\n\nits own text\n" + written


# --- JUnit XML ----------------------------------------------------------------------------


@with_and_without_workers
def test_junit_xml_carries_the_statistics_of_built_in_verifiers(
    tester: pytest.Pytester, dist: list[str]
) -> None:
    tester.runpytest("--crystallize", "--junitxml", "junit.xml", *dist)
    cases = {
        f"{case.get('classname')}::{case.get('name')}": case
        for case in ET.parse(tester.path / "junit.xml").getroot().iter("testcase")
    }
    boosted = cases["experiment_speed.speed.faster::boosted"]
    props = {p.get("name"): p.get("value") for p in boosted.iter("property")}
    want = expected_paired(5.0)
    assert props["crystallize_outcome"] == "passed"
    assert props["verifier"] == "paired t-test"
    assert (props["metrics"], props["correction"]) == ("total", "holm")
    assert (props["n_baseline"], props["n_treatment"]) == ("6", "6")
    assert float(props["p_value"]) == pytest.approx(want["pvalue"], rel=1e-9)
    assert float(props["p_value_adjusted"]) == pytest.approx(2 * want["pvalue"], rel=1e-9)
    for key in ("mde", "ci_low", "ci_high", "difference", "effect_size"):
        assert float(props[key]) == pytest.approx(want[key], rel=1e-9), key
    assert props["effect_size_name"] == "d_z"
    assert boosted.find("failure") is None

    same = cases["experiment_speed.speed.faster::same"]
    failure = same.find("failure")
    assert failure is not None
    assert "every paired difference is exactly 0" in (failure.get("message") or "")
    same_props = {p.get("name"): p.get("value") for p in same.iter("property")}
    assert (same_props["p_value"], same_props["p_value_adjusted"]) == ("1.0", "1.0")

    odd = cases["experiment_speed.odd.ratio_changes::shifted"]
    odd_props = {p.get("name"): p.get("value") for p in odd.iter("property")}
    assert "p_value_adjusted" not in odd_props  # a family of one is not adjusted
    assert "mean_baseline" not in odd_props  # NaN: left out rather than written as "nan"


# --- live progress ------------------------------------------------------------------------


class FakeTerminal:
    def __init__(self, tty: bool = True) -> None:
        self.isatty = lambda: tty
        self.calls: list[tuple[Any, ...]] = []
        self.capturing = False

    def ensure_newline(self) -> None:
        self.calls.append(("newline", self.capturing))

    def rewrite(self, line: str, **markup: bool) -> None:
        self.calls.append(("rewrite", line, markup, self.capturing))


class FakeCapture:
    """Records whether output capture was suspended around the terminal writes."""

    def __init__(self, terminal: FakeTerminal) -> None:
        self.terminal = terminal

    @contextlib.contextmanager
    def global_and_fixture_disabled(self) -> Iterator[None]:
        self.terminal.capturing = True  # "capture is off, the terminal is reachable"
        try:
            yield
        finally:
            self.terminal.capturing = False


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    made = Clock()
    # Replace the module's view of `time`, not the global function pytest itself times with.
    monkeypatch.setattr(_reporting, "time", SimpleNamespace(perf_counter=made))
    return made


def test_live_progress_shows_runs_done_and_time_left_then_the_total(clock: Clock) -> None:
    terminal = FakeTerminal()
    progress = LiveProgress(terminal, FakeCapture(terminal), "speed", 40)
    for i in range(1, 41):
        clock.now = i / 10  # 0.1 s per run
        progress.advance()
    assert terminal.calls[0] == ("newline", True)  # once, before the first rewrite
    assert [c[0] for c in terminal.calls[1:]] == ["rewrite"] * 5
    assert [c[1] for c in terminal.calls[1:]] == [
        "speed: 20/40 runs, about 2 s left",  # first shown after 2 s
        "speed: 25/40 runs, about 2 s left",  # then at most every 0.5 s
        "speed: 30/40 runs, about 1 s left",
        "speed: 35/40 runs, about 0 s left",
        "speed: 40 runs in 4.0 s",  # the last one always
    ]
    assert all(c[2] == {"erase": True} and c[3] for c in terminal.calls[1:])


def test_live_progress_stays_silent_for_a_quick_experiment(clock: Clock) -> None:
    terminal = FakeTerminal()
    progress = LiveProgress(terminal, None, "quick", 10)  # no capture manager: fine too
    for i in range(1, 11):
        clock.now = i / 10
        progress.advance()
    assert terminal.calls == []


def test_live_progress_writes_without_a_capture_manager(clock: Clock) -> None:
    terminal = FakeTerminal()
    progress = LiveProgress(terminal, None, "slow", 2)
    clock.now = 3.0
    progress.advance()
    clock.now = 6.0
    progress.advance()
    assert [c[:2] for c in terminal.calls] == [
        ("newline", False),
        ("rewrite", "slow: 1/2 runs, about 3 s left"),
        ("rewrite", "slow: 2 runs in 6.0 s"),
    ]


class FakePlugins:
    def __init__(self, plugins: dict[str, Any]) -> None:
        self.plugins = plugins

    def get_plugin(self, name: str) -> Any:
        return self.plugins.get(name)


class FakeConfig:
    def __init__(self, terminal: Any, verbosity: int = 0, worker: bool = False) -> None:
        self.pluginmanager = FakePlugins({"terminalreporter": terminal, "capturemanager": None})
        self.verbosity = verbosity
        if worker:
            self.workerinput = {"workerid": "gw0"}

    def get_verbosity(self) -> int:
        return self.verbosity


def test_live_progress_is_only_for_a_terminal_at_default_verbosity_without_workers() -> None:
    shown = LiveProgress.for_session(FakeConfig(FakeTerminal()), "speed", 12)  # type: ignore[arg-type]
    assert isinstance(shown, LiveProgress)
    assert (shown.name, shown.total, shown.done) == ("speed", 12, 0)
    for config in (
        FakeConfig(FakeTerminal(), verbosity=-1),  # -q
        FakeConfig(FakeTerminal(), verbosity=1),  # -v prints a line per chunk anyway
        FakeConfig(FakeTerminal(), worker=True),  # an xdist worker
        FakeConfig(FakeTerminal(tty=False)),  # output piped to a file or CI log
        FakeConfig(None),  # -p no:terminal
    ):
        assert LiveProgress.for_session(config, "speed", 12) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("tty", [True, False])
def test_live_progress_reads_isatty_as_a_bool_too(tty: bool) -> None:
    """Before pytest 8.4.1 ``TerminalReporter.isatty`` was a plain bool, not a method."""
    terminal = FakeTerminal()
    terminal.isatty = tty  # type: ignore[assignment]
    config = FakeConfig(terminal)
    made = LiveProgress.for_session(config, "speed", 12)  # type: ignore[arg-type]
    assert (made is not None) == tty


def test_live_progress_follows_the_real_terminal_reporter_and_verbosity(
    ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ourtester.parseconfigure(*NO_XDIST)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    assert LiveProgress.for_session(config, "speed", 4) is None  # pytester's output: no tty
    monkeypatch.setattr(terminal, "isatty", lambda: True)
    assert isinstance(LiveProgress.for_session(config, "speed", 4), LiveProgress)
    quiet = ourtester.parseconfigure("-q", *NO_XDIST)
    monkeypatch.setattr(quiet.pluginmanager.get_plugin("terminalreporter"), "isatty", lambda: True)
    assert LiveProgress.for_session(quiet, "speed", 4) is None
