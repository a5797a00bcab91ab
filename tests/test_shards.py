"""Shards across CI jobs, judged once: ``--crystallize-shard=K/N`` runs a deterministic share of
the replicates and judges nothing; ``--crystallize-merge`` judges the shards' runs, running
none, with the same verdicts, p-values, terminal lines, JUnit properties and reports as one
session that ran them all."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _support import (
    IN_PROCESS,
    NO_XDIST,
    TWO_WORKERS,
    SummaryRows,
    experiment_source,
    from_json,
    verdict_lines,
)
from test_outputs import SCHEMA, validate

# A step never runs in a merge: the in-process sessions see this variable, workers inherit it.
MERGING = "CRYSTALLIZE_TEST_MERGING"
NOT_IN_MERGE = f'assert not os.environ.get("{MERGING}"), "a step ran in the merge"'
# 10 replicates: units of 4, 3 and 3 replicates with N = 3.
FILES = {
    "experiment_a": {"demo": {"boost": 5.0, "flat": 0.0}},
    "experiment_b": {"steady": {"lift": 5.0}},
}


def write_files(tester: pytest.Pytester, step_code: str = NOT_IN_MERGE, **kw: Any) -> None:
    for name, experiments in FILES.items():
        source = experiment_source(experiments, replicates=10, step_code=step_code, **kw)
        tester.makepyfile(**{name: source})


def run_shards(tester: pytest.Pytester, n: int, *args: str) -> list[Path]:
    """Run shards 1 to ``n`` in one process each; return their JSON reports."""
    paths = []
    for k in range(1, n + 1):
        path = tester.path / f"shard-{k}.json"
        result = tester.runpytest(
            "--crystallize", f"--crystallize-shard={k}/{n}", f"--crystallize-json={path.name}",
            *NO_XDIST, *args,
        )  # fmt: skip
        assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout
        paths.append(path)
    return paths


def units(path: Path) -> list[tuple[str, str, int, int, int]]:
    """(experiment, condition, start, stop, look) of every unit of a shard report."""
    shard = from_json(path)["shard"]
    return sorted(
        (e["name"], u["condition"], *u["replicates"], u["look"])
        for e in shard["experiments"]
        for u in e["units"]
    )


def verdicts(path: Path) -> list[dict[str, Any]]:
    return [v for e in from_json(path)["experiments"] for v in e["verdicts"]]


def junit_properties(path: Path) -> dict[str, dict[str, str]]:
    cases = ET.parse(path).getroot().iter("testcase")
    return {
        f"{c.get('classname')}::{c.get('name')}": {
            str(p.get("name")): str(p.get("value")) for p in c.iter("property")
        }
        for c in cases
        if any(True for _ in c.iter("property"))
    }


def test_shards_run_every_replicate_once_balanced_whatever_the_workers_and_the_order(
    ourtester: pytest.Pytester,
) -> None:
    write_files(ourtester)
    paths = run_shards(ourtester, 3)
    shares = [units(p) for p in paths]
    shown = ourtester.runpytest(
        "--crystallize", "--crystallize-shard=1/3", "--crystallize-json=x.json", *NO_XDIST
    )
    shown.stdout.fnmatch_lines(["*5 passed, 10 deselected in *"])
    replicates = Counter(
        (name, condition, r) for share in shares for name, condition, a, b, _ in share
        for r in range(a, b)
    )  # fmt: skip
    conditions = {("demo", c) for c in ("baseline", "boost", "flat")}
    conditions |= {("steady", c) for c in ("baseline", "lift")}
    assert set(replicates) == {(n, c, r) for n, c in conditions for r in range(10)}
    assert set(replicates.values()) == {1}  # each in exactly one shard
    sizes = [sum(b - a for _, _, a, b, _ in share) for share in shares]
    assert sum(sizes) == 50
    assert max(sizes) - min(sizes) <= 4, sizes  # a unit at most
    for path in paths:  # a shard judges nothing
        assert verdicts(path) == []
        assert from_json(path)["shard"]["count"] == 3

    # The same share with two workers (its chunks cut further), and the files given the
    # other way round.
    again = ourtester.runpytest(
        "--crystallize", "--crystallize-shard=2/3", "--crystallize-json=again.json",
        "experiment_b.py", "experiment_a.py", *TWO_WORKERS,
    )  # fmt: skip
    assert units(ourtester.path / "again.json") == shares[1]
    assert again.ret == pytest.ExitCode.OK
    again.stdout.fnmatch_lines(
        [
            "crystallize: shard 2/3 ran * replicates of 2 experiments; no verdict is judged in "
            "a shard: the verdicts come from the merge of all 3 shards' JSON reports "
            "(--crystallize-merge)",
            "  experiment_a.py::demo: baseline *; boost *; flat *",
        ]
    )
    again.stdout.no_fnmatch_line("*::by_p::*")


MERGE_MODES = [
    pytest.param(TWO_WORKERS, id="n2"),
    pytest.param(NO_XDIST, id="no-xdist"),
    pytest.param([*IN_PROCESS, "-p", "no:cacheprovider"], id="no-cacheprovider"),
]


@pytest.mark.parametrize("dist", MERGE_MODES)
def test_the_merge_judges_as_one_session_to_the_last_digit_running_no_step(
    ourtester: pytest.Pytester,
    summary_rows: SummaryRows,
    monkeypatch: pytest.MonkeyPatch,
    dist: list[str],
) -> None:
    write_files(ourtester)
    outputs = ("--crystallize-json=one.json", "--junitxml=one.xml", "--crystallize-md=one.md")
    one = ourtester.runpytest("--crystallize", "-rA", *outputs, *NO_XDIST)  # as with -n 2
    run_shards(ourtester, 3)
    monkeypatch.setenv(MERGING, "1")
    outputs = ("--crystallize-json=all.json", "--junitxml=all.xml", "--crystallize-md=all.md")
    merged = ourtester.runpytest(
        "--crystallize", "-rA", "--crystallize-merge=shard-*.json", *outputs, *dist
    )
    assert merged.ret == one.ret == pytest.ExitCode.TESTS_FAILED  # flat fails, as in one session
    assert verdict_lines(merged.stdout.str()) == verdict_lines(one.stdout.str())
    assert len(verdict_lines(one.stdout.str())) == 3
    assert summary_rows(merged) == summary_rows(one)
    assert verdicts(ourtester.path / "all.json") == verdicts(ourtester.path / "one.json")
    assert junit_properties(ourtester.path / "all.xml") == junit_properties(
        ourtester.path / "one.xml"
    )
    markdown = (ourtester.path / "all.md").read_text().splitlines()
    assert markdown == (ourtester.path / "one.md").read_text().splitlines()
    merged.stdout.fnmatch_lines(
        [
            "crystallize: judged the 50 runs of 3 shards (shard-1.json, shard-2.json, "
            "shard-3.json); no replicate ran in this session"
        ]
    )
    report = from_json(ourtester.path / "all.json")
    assert validate(report, SCHEMA) == []
    assert validate(from_json(ourtester.path / "shard-1.json"), SCHEMA) == []
    assert report["merge"] == {
        "count": 3,
        "files": ["shard-1.json", "shard-2.json", "shard-3.json"],
    }
    assert report["shard"] is None


def test_a_merge_saves_a_baseline_and_compares_with_it_as_one_session_does(
    ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(ourtester)
    run_shards(ourtester, 2)
    monkeypatch.setenv(MERGING, "1")
    merge = (
        "--crystallize",
        "--crystallize-merge=shard-1.json",
        "--crystallize-merge=shard-2.json",
    )
    saved = ourtester.runpytest(*merge, "--crystallize-save=main", *NO_XDIST)
    saved.assert_outcomes(passed=7, failed=1)  # 5 chunks; boost, lift pass, flat fails
    compared = ourtester.runpytest(
        *merge, "--crystallize-compare=main", "--crystallize-compare-fail=score:-5%", "-rA",
        *NO_XDIST,
    )  # fmt: skip
    compared.stdout.fnmatch_lines(["PASSED p=* experiment_a.py::demo::vs-main::score*"])


# demo: replicate 3 of boost fails (a run error); steady: replicate 3 of lift stops its chunk.
FAIL_AND_STOP = """
import pytest
if ctx["condition"] == "boost" and ctx["replicate"] == 3:
    raise ValueError("boom")
if ctx["condition"] == "lift" and ctx["replicate"] == 3:
    pytest.fail("halt")
"""


@pytest.mark.parametrize("dist", [TWO_WORKERS, NO_XDIST], ids=["n2", "no-xdist"])
def test_failed_and_stopped_runs_of_a_shard_become_error_verdicts_of_the_merge(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    write_files(ourtester, step_code=FAIL_AND_STOP)
    one = ourtester.runpytest("--crystallize", "--crystallize-json=one.json", *NO_XDIST)
    paths = run_shards(ourtester, 3)
    ended = sorted(
        (e["name"], u["condition"], u["status"], u["failed_runs"], u["replicate"], u["reason"])
        for p in paths for e in from_json(p)["shard"]["experiments"] for u in e["units"]
        if u["status"] != "ran"
    )  # fmt: skip
    assert ended == [
        ("demo", "boost", "failed", 1, None, None),
        ("steady", "lift", "stopped", 0, 3, "pytest.fail: halt"),
    ]
    merged = ourtester.runpytest(
        "--crystallize", "--crystallize-merge=shard-*.json", "--crystallize-json=all.json", *dist
    )
    assert merged.ret == one.ret == pytest.ExitCode.TESTS_FAILED
    alone, together = verdicts(ourtester.path / "one.json"), verdicts(ourtester.path / "all.json")
    assert [v["outcome"] for v in together] == [v["outcome"] for v in alone] == ["error"] * 3
    assert together[:2] == alone[:2]  # demo's family: a failed run, said the same way
    merged.stdout.fnmatch_lines(
        [
            "replicate 3 of condition 'lift' stopped (pytest.fail: halt), so its chunk's "
            "other replicates did not run; no verdict is given on partial data",
            "replicate 3 of condition 'lift' stopped in its shard: pytest.fail: halt",
        ]
    )


def test_a_shards_markdown_and_step_summary_say_what_it_ran_not_an_empty_verdict_table(
    ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(ourtester, step_code=FAIL_AND_STOP)
    step_summary = ourtester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = ourtester.runpytest(
        "--crystallize", "--crystallize-shard=1/2", "--crystallize-json=s.json",
        "--crystallize-md=s.md", *NO_XDIST,
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the failed chunks, as in a session
    result.stdout.fnmatch_lines(
        ["selected 5 chunks of shard 1/2 (verdicts: by the merge of the shards' reports)"]
    )
    text = (ourtester.path / "s.md").read_text(encoding="utf-8")
    assert step_summary.read_text(encoding="utf-8") == text
    shard = from_json(ourtester.path / "s.json")["shard"]
    runs = sum(len(e["runs"]) for e in shard["experiments"])
    lines = text.splitlines()
    assert lines[0] == f"## crystallize: shard 1/2 ran {runs} replicates of 2 experiments"
    assert "the verdicts come from the merge of all 2 shards' JSON reports" in lines[2]
    assert "| hypothesis |" not in text  # no table of verdicts
    expected = []
    for e in shard["experiments"]:
        failed = sum(u["failed_runs"] for u in e["units"])
        broken = sum(u["status"] == "stopped" for u in e["units"])
        name = f"{e['file']}::{e['name']}"
        expected.append(f"| {name} | {len(e['units'])} | {len(e['runs'])} | {failed} | {broken} |")
    assert lines[4:] == [
        "| experiment | units | runs | failed runs | units not run whole |",
        "|---|---|---|---|---|",
        *expected,
    ]
    assert [row.rsplit(" | ", 2)[1:] for row in expected] == [["1", "0 |"], ["0", "1 |"]]


def test_a_merge_selecting_what_no_shard_ran_errs_on_it_naming_the_cure(
    ourtester: pytest.Pytester,
) -> None:
    write_files(ourtester)
    run_shards(ourtester, 2, "-k", "demo")  # the shards ran experiment_a's demo alone
    merged = ourtester.runpytest("--crystallize", "--crystallize-merge=shard-*.json", *NO_XDIST)
    assert merged.ret == pytest.ExitCode.TESTS_FAILED
    # demo: 3 chunks and its boost verdict pass, its flat one fails; steady's 2 chunks fail
    merged.assert_outcomes(passed=3 + 1, failed=1 + 2, errors=1)
    merged.stdout.fnmatch_lines(
        [
            "replicate 0 of condition 'baseline' is in none of the shards merged: merge with "
            "the selection the shards ran (the same paths, -k and -m), or run shards of this "
            "selection",
            "ERROR experiment_b.py::steady::by_p::lift - *",
        ]
    )
    same = ourtester.runpytest(
        "--crystallize", "--crystallize-merge=shard-*.json", "-k", "demo", *NO_XDIST
    )
    same.assert_outcomes(passed=3 + 1, failed=1)  # the shards' selection: demo alone


def skips(result: pytest.RunResult) -> set[str]:
    """The reasons of the ``-rs`` lines (their counts vary with the chunks)."""
    return {line.rsplit(": ", 1)[1] for line in result.outlines if line.startswith("SKIPPED")}


def _sequential(looks: int) -> str:
    source = experiment_source({"strong": {"boost": 5.0}, "aa": {"flat": 0.0}}, replicates=12)
    return source.replace(".replicates(12)", f".sequential(looks={looks})\n    .replicates(12)")


@pytest.mark.parametrize("dist", [TWO_WORKERS, NO_XDIST], ids=["n2", "no-xdist"])
def test_a_sequential_design_runs_every_look_in_the_shards_and_the_merge_decides_them(
    ourtester: pytest.Pytester, summary_rows: SummaryRows, dist: list[str]
) -> None:
    ourtester.makepyfile(experiment_seq=_sequential(3))
    one = ourtester.runpytest("--crystallize", "-rsA", "--crystallize-json=one.json", *NO_XDIST)
    paths = run_shards(ourtester, 2)
    looks = {u[-1] for p in paths for u in units(p)}
    assert looks == {1, 2, 3}  # no decision in a shard: every look ran
    merged = ourtester.runpytest(
        "--crystallize", "-rsA", "--crystallize-merge=shard-*.json", "--crystallize-json=all.json",
        *dist,
    )  # fmt: skip
    assert verdict_lines(merged.stdout.str()) == verdict_lines(one.stdout.str())
    assert summary_rows(merged) == summary_rows(one)
    assert verdicts(ourtester.path / "all.json") == verdicts(ourtester.path / "one.json")
    sequential = [e["sequential"] for e in from_json(ourtester.path / "all.json")["experiments"]]
    assert sequential == [
        e["sequential"] for e in from_json(ourtester.path / "one.json")["experiments"]
    ]
    assert [s["stopped_at_look"] for s in sequential] == [1, 2]
    assert skips(one) == {"decided at look 1 of 3", "decided at look 2 of 3"}
    # Under xdist, the replays of a later look may all have run before the decision: the
    # verdicts stay the same, only fewer chunks skip.
    assert skips(merged) == skips(one) if dist == NO_XDIST else skips(merged) <= skips(one)
    merged.stdout.fnmatch_lines(
        ["sequential: strong stopped at look 1 of 3*", "sequential: aa stopped at look 2 of 3*"]
    )


NAN_AT_2 = """
if ctx["condition"] == "flat" and ctx["replicate"] == 2:
    return value, {"score": float("nan")}
"""


def test_a_non_finite_metric_travels_through_the_shard_report_exactly(
    ourtester: pytest.Pytester,
) -> None:
    write_files(ourtester, step_code=NAN_AT_2)
    ourtester.runpytest("--crystallize", "--crystallize-json=one.json", *NO_XDIST)
    paths = run_shards(ourtester, 2)
    assert any('"$float": "nan"' in p.read_text() for p in paths)  # strict JSON
    merged = ourtester.runpytest(
        "--crystallize", "--crystallize-merge=shard-*.json", "--crystallize-json=all.json",
        *NO_XDIST,
    )  # fmt: skip
    assert merged.ret == pytest.ExitCode.TESTS_FAILED
    assert verdicts(ourtester.path / "all.json") == verdicts(ourtester.path / "one.json")
    flat = [v for v in verdicts(ourtester.path / "all.json") if v["treatment"] == "flat"]
    assert flat[0]["outcome"] != "passed"


def test_a_unit_that_crashed_in_its_shard_makes_error_verdicts_saying_so(
    ourtester: pytest.Pytester,
) -> None:
    write_files(ourtester)
    paths = run_shards(ourtester, 2)

    def crash(data: dict[str, Any]) -> None:  # as a shard writes a chunk whose worker died
        entry = data["shard"]["experiments"][0]
        unit = entry["units"][0]
        unit.update(status="crashed", replicate=unit["replicates"][0], reason="worker 'gw1' died")
        entry["runs"] = [r for r in entry["runs"] if r["condition"] != unit["condition"]]

    data = from_json(paths[0])
    crash(data)
    paths[0].write_text(json.dumps(data), encoding="utf-8")
    unit = data["shard"]["experiments"][0]["units"][0]
    merged = ourtester.runpytest("--crystallize", "--crystallize-merge=shard-*.json", *NO_XDIST)
    assert merged.ret == pytest.ExitCode.TESTS_FAILED
    merged.stdout.fnmatch_lines(
        [
            f"replicate {unit['replicates'][0]} of condition {unit['condition']!r} stopped "
            "(crashed in shard-1.json (shard 1/2): worker 'gw1' died), so its chunk's other "
            "replicates did not run; no verdict is given on partial data",
        ]
    )
    merged.stdout.no_fnmatch_line("*PASSED*::demo::*")
