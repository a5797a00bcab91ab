"""examples/ci/github-actions.yml works: its `run:` commands, run locally in order with bash.

A push to main saves the baseline; a pull request compares with it and fails on a regression.
The project is a temporary folder holding a copy of ``examples/experiment_pipeline.py`` (a
small example with a cacheable step). The GitHub-only ``uses:`` steps are stubbed by folders
on disk: the checkout is that folder, the cache and the artifacts are copied to a store and
back, ``$GITHUB_STEP_SUMMARY`` is a temporary file and the secret an environment variable.
The install step is skipped (no network: this venv already has the package).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from _support import ROOT, run_workflow_command

yaml = pytest.importorskip("yaml", reason="PyYAML is a test extra: pip install -e '.[test]'")

WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
EXAMPLE = "experiment_pipeline.py"
SECRET = "0123456789abcdef0123456789abcdef"  # the CRYSTALLIZE_CACHE_KEY secret
# The project's ini: plugins of a developer's machine that are not dependencies stay out.
INI = "[pytest]\naddopts = -p no:benchmark -p no:hypothesispytest -p no:sugar -p no:randomly\n"
# The regression: every estimate's error grows by half.
ERROR_LINE = 'error = abs(value - float(data["truth"][0]))'
# The step summary's row of the gate, with its outcome.
GATE_ROW = r"^\| compare_methods \| vs-main \|.*\babs_error\b.*\b{outcome}\b"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load_workflow() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as True
    return workflow


def resolve(value: str) -> str:
    """``value`` with its ``${{ }}`` expressions replaced; only the secret is known here."""

    def known(match: re.Match[str]) -> str:
        assert match[1] == "secrets.CRYSTALLIZE_CACHE_KEY", f"unknown expression {match[0]}"
        return SECRET

    return EXPRESSION.sub(known, value)


def job_runs(job_if: str, event: str) -> bool:
    match = re.fullmatch(r"github\.event_name == '(\w+)'", job_if)
    assert match, f"unknown job condition {job_if!r}"
    return match[1] == event


class Runner:
    """Runs one job of the workflow in ``checkout`` the way a GitHub runner would."""

    def __init__(self, workflow: Mapping[str, Any], tmp_path: Path, store: Path) -> None:
        self.workflow = workflow
        self.store = store
        self.base_env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("GITHUB_", "CRYSTALLIZE_", "PYTEST_", "COVERAGE_PROCESS_"))
        }
        self.base_env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            XDG_CONFIG_HOME=str(tmp_path / "xdg"),  # never the real home's key file
            # -n auto here: one worker, which keeps the chunks going through xdist at the
            # lowest cost (each worker imports numpy and scipy again)
            PYTEST_XDIST_AUTO_NUM_WORKERS="1",
        )

    def run(self, event: str, checkout: Path, summary: Path) -> tuple[str, int, str]:
        """Run the one job ``event`` triggers; return its name, exit code and output."""
        (name, job), *others = [
            (name, job) for name, job in self.workflow["jobs"].items() if job_runs(job["if"], event)
        ]
        assert not others, f"more than one job runs on {event}"
        env = dict(self.base_env, GITHUB_STEP_SUMMARY=str(summary))
        for key, value in {**self.workflow.get("env", {}), **job.get("env", {})}.items():
            env[key] = resolve(str(value))
        # Caches are scoped as GitHub scopes them: main's are visible to every pull request,
        # a pull request's only to itself.
        scope = "main" if event == "push" else checkout.name
        status, output, saves = 0, [], []
        for step in job["steps"]:
            condition = step.get("if")
            assert condition in (None, "always()"), f"unknown step condition {condition!r}"
            if status and condition is None:
                continue  # a failed step skips the rest, unless it says always()
            if "uses" in step:
                saves += self.uses(step, checkout, scope)
                continue
            command = step["run"]
            assert "${{" not in command, f"an expression in a run command: {command!r}"
            if step.get("id") == "install":
                assert command.startswith("python -m pip install -e ."), command
                continue
            step_env = dict(env, **{k: resolve(str(v)) for k, v in step.get("env", {}).items()})
            done = run_workflow_command(command, checkout, step_env)
            output.append(done.stdout + done.stderr)
            status = status or done.returncode
        if status == 0:  # actions/cache saves after a successful job only
            for path in saves:
                assert (checkout / path).is_dir(), f"no folder {path} to cache"
                target = self.store / "cache" / scope / path
                shutil.copytree(checkout / path, target, dirs_exist_ok=True)
        return name, status, "\n".join(output)

    def uses(self, step: Mapping[str, Any], checkout: Path, scope: str) -> list[str]:
        """Stub a GitHub action; return the paths actions/cache saves at the end."""
        action, _, version = step["uses"].partition("@")
        given = step.get("with", {})
        assert version, f"{action} is not pinned to a version"
        if action in ("actions/checkout", "actions/setup-python"):
            return []  # the checkout is given; python is this venv's
        if action == "actions/cache":
            path = given["path"]
            for saved in (self.store / "cache" / scope / path, self.store / "cache/main" / path):
                if saved.is_dir():
                    shutil.copytree(saved, checkout / path)
                    break
            return [path]
        if action == "actions/upload-artifact":
            source = checkout / given["path"]
            if source.is_file():
                target = self.store / "artifacts" / given["name"]
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            else:
                assert given.get("if-no-files-found") != "error", f"no {source} to upload"
            return []
        if action == "dawidd6/action-download-artifact":
            assert (given["branch"], given["event"]) == ("main", "push")
            source = self.store / "artifacts" / given["name"]
            if source.is_dir():
                shutil.copytree(source, checkout / given["path"], dirs_exist_ok=True)
            else:  # main has not uploaded a baseline yet
                assert given["if_no_artifact_found"] == "warn", "a first pull request would fail"
            return []
        msg = f"no stub for the action {step['uses']!r}: add one to this test"
        raise AssertionError(msg)


def checkout(tmp_path: Path, name: str, edit: tuple[str, str] | None = None) -> Path:
    """A fresh runner's checkout: the example in examples/, an ini, ``edit`` applied."""
    folder = tmp_path / name
    (folder / "examples").mkdir(parents=True)
    (folder / "pytest.ini").write_text(INI, encoding="utf-8")
    source = (ROOT / "examples" / EXAMPLE).read_text(encoding="utf-8")
    if edit is not None:
        assert source.count(edit[0]) == 1, f"{edit[0]!r} not found once in {EXAMPLE}"
        source = source.replace(*edit)
    (folder / "examples" / EXAMPLE).write_text(source, encoding="utf-8")
    return folder


def test_main_saves_a_baseline_and_a_pull_request_passes_or_fails_on_the_gate(
    tmp_path: Path,
) -> None:
    workflow = load_workflow()
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert "pull_request" in workflow["on"]
    assert "abs_error:" in workflow["env"]["GATE"]  # the example's metric
    runner = Runner(workflow, tmp_path, tmp_path / "store")

    # The pull request that adds the workflow: main has no baseline yet, so the comparison is
    # skipped and the job passes on the experiment's own hypotheses.
    first = checkout(tmp_path, "first")
    summary = tmp_path / "first.md"
    job, status, output = runner.run("pull_request", first, summary)
    assert (job, status) == ("compare", 0), output
    assert "no baseline 'main' yet for compare_methods" in summary.read_text(encoding="utf-8")

    main = checkout(tmp_path, "main")
    job, status, output = runner.run("push", main, tmp_path / "main.md")
    assert (job, status) == ("baseline", 0), output
    assert (tmp_path / "store/artifacts/crystallize-baseline-main/main.json").is_file()
    assert list((tmp_path / "store/cache/main/.pytest_cache/d/crystallize-steps").rglob("*"))

    # A change that leaves the baseline condition's errors as they were: the gate passes,
    # the steps main cached are trusted (same secret) and not recomputed.
    harmless = checkout(tmp_path, "harmless", ("share: float = 0.2", "share: float = 0.25"))
    summary = tmp_path / "harmless.md"
    job, status, output = runner.run("pull_request", harmless, summary)
    assert (job, status) == ("compare", 0), output
    assert re.search(r"step cache: [1-9]\d* hits, 0 misses", output), output
    table = summary.read_text(encoding="utf-8")
    assert "| experiment | hypothesis |" in table
    assert re.search(GATE_ROW.format(outcome="passed"), table, re.MULTILINE), table
    assert (tmp_path / "store/artifacts/crystallize-report/crystallize-report.html").is_file()

    # A regression of the gated metric beyond the margin: exit code 1, and the report of the
    # failed gate is still uploaded (if: always()).
    shutil.rmtree(tmp_path / "store/artifacts/crystallize-report")
    worse = checkout(tmp_path, "worse", (ERROR_LINE, f"{ERROR_LINE} * 1.5"))
    summary = tmp_path / "worse.md"
    job, status, output = runner.run("pull_request", worse, summary)
    assert (job, status) == ("compare", 1), output
    assert re.search(r"FAILED .*compare_methods::vs-main::abs_error", output), output
    table = summary.read_text(encoding="utf-8")
    assert re.search(GATE_ROW.format(outcome="failed"), table, re.MULTILINE), table
    assert (tmp_path / "store/artifacts/crystallize-report/crystallize-report.html").is_file()
