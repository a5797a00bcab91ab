"""What a merge refuses, before anything runs, and how it says so: files that are not shard
reports, a missing shard, a shard twice, shards of different N, packages or experiment
definitions, and a replicate twice or missing. Bad ``--crystallize-shard`` values and
combinations are usage errors too."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _support import NO_XDIST, experiment_source, from_json

ONE_RUN = "merge the JSON reports of every shard of one sharded run"
NOT_A_SHARD = "make one with --crystallize-shard=K/N --crystallize-json=PATH"
SOURCE = experiment_source({"demo": {"boost": 5.0}}, replicates=9)


@pytest.fixture
def shards(ourtester: pytest.Pytester) -> pytest.Pytester:
    """``experiment_a.py`` (demo: baseline and boost, 9 replicates) run as shards 1 to 3 of
    3 (``shard-K.json``) and as shard 2 of 2 (``other-2.json``)."""
    ourtester.makepyfile(experiment_a=SOURCE)
    for k, n, name in ((1, 3, "shard-1"), (2, 3, "shard-2"), (3, 3, "shard-3"), (2, 2, "other-2")):
        result = ourtester.runpytest(
            "--crystallize", f"--crystallize-shard={k}/{n}", f"--crystallize-json={name}.json",
            *NO_XDIST,
        )  # fmt: skip
        assert result.ret == pytest.ExitCode.OK
    return ourtester


def merge(tester: pytest.Pytester, *files: str) -> pytest.RunResult:
    """A merge of ``files`` that must be refused before anything runs."""
    args = [f"--crystallize-merge={f}" for f in files]
    result = tester.runpytest("--crystallize", *args, *NO_XDIST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "passed" not in result.stdout.str()
    return result


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = from_json(path)
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_the_set_of_shards_is_checked(shards: pytest.Pytester) -> None:
    merge(shards, "shard-1.json", "shard-3.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: shard 2/3 is missing (given: shard-1.json (shard 1/3), "
            "shard-3.json (shard 3/3)): give every shard's JSON report"
        ]
    )
    shutil.copy(shards.path / "shard-1.json", shards.path / "copy.json")
    merge(shards, "shard-1.json", "copy.json", "shard-2.json").stderr.fnmatch_lines(
        ["ERROR: --crystallize-merge: shard-1.json and copy.json are both shard 1/3: give each "
         "shard once"]
    )  # fmt: skip
    merge(shards, "shard-1.json", "shard-*.json").stderr.fnmatch_lines(
        ["ERROR: --crystallize-merge: '*shard-1.json' is given twice: give each shard's report "
         "once"]
    )  # fmt: skip
    merge(shards, "shard-1.json", "other-2.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: shard-1.json (shard 1/3) and other-2.json (shard 2/2) "
            f"were cut into different numbers of shards: {ONE_RUN}"
        ]
    )
    merge(shards, "nowhere/*.json").stderr.fnmatch_lines(
        [f"ERROR: --crystallize-merge 'nowhere/*.json' matches no file: {ONE_RUN}"]
    )

    def older_scipy(data: dict[str, Any]) -> None:
        data["shard"]["packages"]["scipy"] = "0.1"

    edit(shards.path / "shard-2.json", older_scipy)
    scipy = from_json(shards.path / "shard-1.json")["shard"]["packages"]["scipy"]
    merge(shards, "shard-*.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: shard-1.json (shard 1/3) and shard-2.json (shard 2/3) "
            f"ran different package versions (scipy {scipy} and 0.1): run every shard in one "
            "environment"
        ]
    )


def test_a_file_that_is_not_a_shard_report_is_refused_naming_it(
    shards: pytest.Pytester,
) -> None:
    unsharded = shards.runpytest("--crystallize", "--crystallize-json=one.json", *NO_XDIST)
    assert unsharded.ret == pytest.ExitCode.OK
    merge(shards, "shard-1.json", "one.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: '*one.json' is not a shard report (it has no 'shard' "
            f"field: the JSON report of an unsharded session?); {NOT_A_SHARD}"
        ]
    )
    (shards.path / "garbage.json").write_text("{not json", encoding="utf-8")
    merge(shards, "garbage.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: '*garbage.json' is not a shard report (it is not JSON: "
            f"Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); "
            f"{NOT_A_SHARD}"
        ]
    )
    merge(shards, "missing.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: '*missing.json' is not a shard report (it cannot be "
            f"read: No such file or directory); {NOT_A_SHARD}"
        ]
    )

    def malformed(data: dict[str, Any]) -> None:
        del data["shard"]["experiments"][0]["units"]

    edit(shards.path / "shard-3.json", malformed)
    merge(shards, "shard-*.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: '*shard-3.json' is not a shard report (its 'shard' "
            f"field is malformed: KeyError('units')); {NOT_A_SHARD}"
        ]
    )


def _units(data: dict[str, Any]) -> list[dict[str, Any]]:
    units: list[dict[str, Any]] = data["shard"]["experiments"][0]["units"]
    return units


def test_the_experiments_and_replicates_of_the_shards_are_checked(
    shards: pytest.Pytester,
) -> None:
    path = shards.path
    shutil.copytree(path, path / "kept", ignore=shutil.ignore_patterns("kept"))

    def restore() -> None:
        for name in ("shard-1.json", "shard-2.json", "shard-3.json", "experiment_a.py"):
            shutil.copy(path / "kept" / name, path / name)

    def other_print(data: dict[str, Any]) -> None:
        data["shard"]["experiments"][0]["fingerprint"] = "0123456789abcdef"

    ours = from_json(path / "shard-1.json")["shard"]["experiments"][0]["fingerprint"]
    edit(path / "shard-2.json", other_print)
    merge(shards, "shard-*.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: experiment 'demo' (experiment_a.py) differs between "
            f"shard-1.json (shard 1/3) and shard-2.json (shard 2/3) (fingerprint {ours} and "
            "0123456789abcdef): every shard must run the same experiment definitions (one "
            "commit, the same options)"
        ]
    )
    restore()
    shards.makepyfile(experiment_a=SOURCE.replace("5.0", "6.0"))  # boost changed since
    result = merge(shards, "shard-*.json")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: experiment 'demo' (experiment_a.py) is not the one the "
            f"shards ran (fingerprint * here, {ours} in shard-1.json (shard 1/3)): merge with "
            "the experiment files, commit and options the shards ran"
        ]
    )
    (path / "experiment_a.py").unlink()
    merge(shards, "shard-*.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-merge: shard-1.json (shard 1/3) ran experiment 'demo' of "
            f"experiment_a.py, which is not here (no file experiment_a.py under {path}): merge "
            "in a checkout of the commit the shards ran, from the same rootdir"
        ]
    )
    restore()

    first = _units(from_json(path / "shard-1.json"))[0]
    edit(path / "shard-2.json", lambda data: _units(data).append(first))
    merge(shards, "shard-*.json").stderr.fnmatch_lines(
        [
            f"ERROR: --crystallize-merge: replicate {first['replicates'][0]} of condition "
            f"{first['condition']!r} of experiment 'demo' (experiment_a.py) is in both "
            f"shard-1.json (shard 1/3) and shard-2.json (shard 2/3): {ONE_RUN}"
        ]
    )
    restore()

    def drop_a_unit(data: dict[str, Any]) -> None:
        unit = _units(data).pop(0)
        runs = data["shard"]["experiments"][0]["runs"]
        start, stop = unit["replicates"]
        runs[:] = [
            r
            for r in runs
            if r["condition"] != unit["condition"] or not start <= r["replicate"] < stop
        ]

    gone = _units(from_json(path / "shard-2.json"))[0]
    edit(path / "shard-2.json", drop_a_unit)
    start, stop = gone["replicates"]
    merge(shards, "shard-*.json").stderr.fnmatch_lines(
        [
            f"ERROR: --crystallize-merge: replicate {start} (and {stop - start - 1} more) of "
            f"condition {gone['condition']!r} of experiment 'demo' (experiment_a.py) is in none "
            f"of the shards that ran it (shard-1.json, shard-2.json, shard-3.json): {ONE_RUN}"
        ]
    )
    restore()

    def drop_a_run(data: dict[str, Any]) -> None:
        data["shard"]["experiments"][0]["runs"].pop()

    last = from_json(path / "shard-3.json")["shard"]["experiments"][0]["runs"][-1]
    edit(path / "shard-3.json", drop_a_run)
    merge(shards, "shard-*.json").stderr.fnmatch_lines(
        [
            f"ERROR: --crystallize-merge: shard-3.json (shard 3/3) says replicate "
            f"{last['replicate']} of condition {last['condition']!r} of experiment 'demo' "
            f"(experiment_a.py) ran, but holds no run of it: the file is incomplete; run that "
            f"shard again"
        ]
    )


@pytest.mark.parametrize("value", ["4/3", "0/2", "2", "a/b", "1/0"])
def test_a_bad_shard_is_a_usage_error_echoing_it(ourtester: pytest.Pytester, value: str) -> None:
    result = ourtester.runpytest("--crystallize", f"--crystallize-shard={value}", *NO_XDIST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*argument --crystallize-shard: expected K/N, the K-th of N shards with 1 <= K <= N "
            f"(such as 2/3), got {value!r}"
        ]
    )


def test_a_shard_needs_a_json_report_and_leaves_judging_to_the_merge(
    ourtester: pytest.Pytester,
) -> None:
    def refused(*args: str) -> pytest.RunResult:
        result = ourtester.runpytest("--crystallize", *args, *NO_XDIST)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        return result

    refused("--crystallize-shard=1/2").stderr.fnmatch_lines(
        ["ERROR: --crystallize-shard=1/2 writes its runs for the merge: give "
         "--crystallize-json=PATH"]
    )  # fmt: skip
    refused("--crystallize-shard=1/2", "--crystallize-merge=x.json").stderr.fnmatch_lines(
        [
            "ERROR: --crystallize-shard runs a share of the replicates and --crystallize-merge "
            "judges the shards' runs: give one of them, in separate sessions"
        ]
    )
    for flag in ("--crystallize-save=main", "--crystallize-compare=main"):
        result = refused("--crystallize-shard=2/2", "--crystallize-json=s.json", flag)
        result.stderr.fnmatch_lines(
            [
                f"ERROR: --crystallize-shard=2/2 judges nothing, so {flag.split('=')[0]} "
                "belongs to the session that merges the shards (--crystallize-merge): give it "
                "there"
            ]
        )
