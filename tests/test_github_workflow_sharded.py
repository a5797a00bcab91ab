"""examples/ci/github-actions-sharded.yml works: its `run:` commands, run locally with bash.

A pull request's workflow runs: three shard jobs (the matrix), each uploading its runs, then
the judge, which downloads them and merges them with the comparison to main's baseline. Its
verdicts are those of one unsharded session of the same experiments (which also saved the
baseline the pull request compares with). The project is a temporary folder holding copies
of examples (a pipeline with an upstream experiment, and sequential designs); the `uses:`
steps are stubbed by folders on disk as in ``test_github_workflow.py``, and the install step
is skipped (this venv has the package).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from _support import ROOT, run_workflow_command

yaml = pytest.importorskip("yaml", reason="PyYAML is a test extra: pip install -e '.[test]'")

WORKFLOW = ROOT / "examples" / "ci" / "github-actions-sharded.yml"
EXAMPLES = ("experiment_pipeline.py", "experiment_sequential.py")
SECRET = "0123456789abcdef0123456789abcdef"
INI = "[pytest]\naddopts = -p no:benchmark -p no:hypothesispytest -p no:sugar -p no:randomly\n"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def resolve(value: str, matrix: Mapping[str, Any]) -> str:
    """``value`` with its ``${{ }}`` expressions replaced: the secret and the matrix."""

    def known(match: re.Match[str]) -> str:
        if match[1] == "secrets.CRYSTALLIZE_CACHE_KEY":
            return SECRET
        name = match[1].removeprefix("matrix.")
        assert name in matrix, f"unknown expression {match[0]}"
        return str(matrix[name])

    return EXPRESSION.sub(known, value)


def runs(condition: str | None, event: str, failed: bool) -> bool:
    """Whether a job or step with ``if: condition`` runs."""
    if condition == "${{ !cancelled() }}":
        return True
    if condition is None:
        return not failed
    match = re.fullmatch(r"github\.event_name == '(\w+)'", condition)
    assert match, f"unknown condition {condition!r}"
    return match[1] == event and not failed


class Runner:
    """Runs the jobs of the workflow the way GitHub runners would, one checkout each."""

    def __init__(self, workflow: Mapping[str, Any], tmp_path: Path) -> None:
        self.workflow = workflow
        self.tmp_path = tmp_path
        self.store = tmp_path / "store"
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("GITHUB_", "CRYSTALLIZE_", "PYTEST_", "COVERAGE_PROCESS_"))
        }
        self.env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            XDG_CONFIG_HOME=str(tmp_path / "xdg"),
            PYTEST_XDIST_AUTO_NUM_WORKERS="1",  # -n auto: one worker, the cheapest
            GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
        )

    def run(self, name: str, event: str, matrix: Mapping[str, Any]) -> tuple[int, str]:
        job = self.workflow["jobs"][name]
        checkout = make_checkout(self.tmp_path / f"{name}{''.join(map(str, matrix.values()))}")
        env = dict(self.env)
        for key, value in {**self.workflow["env"], **job.get("env", {})}.items():
            env[key] = resolve(str(value), matrix)
        status, output = 0, []
        for step in job["steps"]:
            if not runs(step.get("if"), event, status != 0):
                continue
            if "uses" in step:
                self.uses(step, checkout, matrix)
                continue
            if step.get("id") == "install":
                assert step["run"].startswith("python -m pip install -e ."), step["run"]
                continue
            command = step["run"]
            assert "${{" not in command, f"an expression in a run command: {command!r}"
            done = run_workflow_command(command, checkout, env)
            output.append(done.stdout + done.stderr)
            status = status or done.returncode
        return status, "\n".join(output)

    def uses(self, step: Mapping[str, Any], checkout: Path, matrix: Mapping[str, Any]) -> None:
        action, _, version = step["uses"].partition("@")
        assert version, f"{action} is not pinned to a version"
        if action in ("actions/checkout", "actions/setup-python", "actions/cache"):
            return  # the checkout is given, python is this venv's, no cache is kept here
        given = {k: resolve(str(v), matrix) for k, v in step.get("with", {}).items()}
        artifacts = self.store / "artifacts"
        if action == "actions/upload-artifact":
            sources = list(checkout.glob(given["path"]))
            assert sources or given.get("if-no-files-found") != "error", given
            target = artifacts / given["name"]
            target.mkdir(parents=True, exist_ok=True)
            for source in sources:
                shutil.copy2(source, target)
        elif action == "actions/download-artifact":
            assert given["merge-multiple"] == "True", "each shard's file in one folder"
            target = checkout / given["path"]
            target.mkdir(parents=True, exist_ok=True)
            for folder in sorted(artifacts.glob(given["pattern"])):
                for source in folder.iterdir():
                    shutil.copy2(source, target)
        elif action == "dawidd6/action-download-artifact":
            source = artifacts / given["name"]
            shutil.copytree(source, checkout / given["path"], dirs_exist_ok=True)
        else:
            msg = f"no stub for the action {step['uses']!r}: add one to this test"
            raise AssertionError(msg)


def make_checkout(folder: Path) -> Path:
    """A fresh runner's checkout: the examples in examples/, and an ini."""
    (folder / "examples").mkdir(parents=True)
    (folder / "pytest.ini").write_text(INI, encoding="utf-8")
    for name in EXAMPLES:
        shutil.copy(ROOT / "examples" / name, folder / "examples" / name)
    return folder


def verdicts(path: Path) -> dict[str, dict[str, Any]]:
    """Every verdict of a JSON report by node id (``created`` and paths aside, all of it)."""
    report = json.loads(path.read_text(encoding="utf-8"))
    return {v["nodeid"]: v for e in report["experiments"] for v in e["verdicts"]}


def test_three_shards_and_a_judge_give_the_verdicts_of_one_session(tmp_path: Path) -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    shards = workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert shards == [1, 2, 3]
    assert workflow["jobs"]["shard"]["env"]["SHARDS"] == str(len(shards))
    assert workflow["jobs"]["judge"]["needs"] == "shard"
    runner = Runner(workflow, tmp_path)

    # One unsharded session: the reference, and main's baseline for the pull request.
    alone = make_checkout(tmp_path / "alone")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--crystallize", "--crystallize-save", "main",
         "--crystallize-json", "alone.json", "-p", "no:xdist", "examples"],
        cwd=alone, env=runner.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    baseline = runner.store / "artifacts" / "crystallize-baseline-main"
    baseline.mkdir(parents=True)
    shutil.copy(alone / ".crystallize" / "baselines" / "main.json", baseline)

    for shard in shards:
        status, output = runner.run("shard", "pull_request", {"shard": shard})
        assert status == 0, output
        assert f"crystallize: shard {shard}/3 ran" in output
    status, output = runner.run("judge", "pull_request", {})
    assert status == 0, output
    assert "judged the" in output
    assert "runs of 3 shards (shard-1.json, shard-2.json, shard-3.json)" in output
    report = runner.store / "artifacts" / "crystallize-report"
    assert (report / "crystallize-report.html").is_file()

    merged = verdicts(report / "crystallize-report.json")
    one = verdicts(alone / "alone.json")
    compared = {k: v for k, v in merged.items() if "::vs-main::" in k}
    assert compared, "the pull request compared with main's baseline"
    # The same runs: the comparisons pass, except for the experiments main's baseline left
    # out (a sequential design decided early holds fewer runs than its design).
    assert (
        compared["examples/experiment_pipeline.py::compare_methods::vs-main::abs_error"]["outcome"]
        == "passed"
    )
    skipped = {k.split("::")[1] for k, v in compared.items() if v["outcome"] != "passed"}
    assert skipped == {"ranker", "reshuffle"}
    assert {k: v for k, v in merged.items() if k not in compared} == one
