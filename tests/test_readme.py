"""README.md is true: its Python runs, its shell commands use options that exist, every
setting and every public name is documented (the names in README.md, or docs/api.md)."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _support import ROOT, SummaryRows

import pytest_crystallize
from pytest_crystallize import stats
from pytest_crystallize._harness.options import OPTIONS

README = ROOT / "README.md"
API = ROOT / "docs" / "api.md"
README_TEXT = README.read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.usefixtures("in_tmp_path")


def blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(README_TEXT) if lang == language]


# The names the README's artifacts block says are "yours", defined here.
ASSUMED = """
import io

import numpy as np

from pytest_crystallize import FrozenContext, data_source, hypothesis, pipeline_step, stats
from pytest_crystallize import treatment


def dump_npy(array):
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


load_npy = np.load


@data_source
def raw(ctx: FrozenContext):
    return ctx.rng_for("data").standard_t(1.5, size=50)


@pipeline_step()
def clean(data, ctx: FrozenContext, *, out):
    out.write(data)
    return data


@pipeline_step()
def estimate(data, ctx: FrozenContext, *, method: str = "mean"):
    value = float(getattr(np, method)(data))
    return value, {"abs_error": abs(value)}


median = treatment("median", {"method": "median"})


@hypothesis(verifier=stats.paired_t_test(alternative="less"), metrics="abs_error")
def smaller_error(result):
    return result["p_value"]
"""


def run_block(code: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    namespace = {"__name__": "readme"} if namespace is None else namespace
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_the_python_blocks_are_the_quick_start_statistics_and_artifacts() -> None:
    first_lines = [code.splitlines()[0] for code in blocks("python")]
    assert first_lines == [
        "from pytest_crystallize import (",
        "from pytest_crystallize import Hypothesis, stats",
        "from pytest_crystallize import Experiment, Hypothesis, data_source, pipeline_step, stats, "
        "treatment",
        "from pytest_crystallize import Artifact, Experiment, ExperimentGraph",
    ]


def test_the_quick_start_runs_prints_what_it_says_and_its_verdict_can_fail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = blocks("python")[0]
    namespace = run_block(code)
    shown = re.search(r"# (p=.*)$", code, re.MULTILINE)
    assert shown is not None
    assert capsys.readouterr().out.strip() == shown[1]
    verdict = namespace["verdict"]
    assert (verdict.outcome, verdict.pvalue < 0.05) == ("passed", True)
    errors = namespace["result"].metrics.baseline.metrics["error"]
    assert len(errors) == 20
    assert len(set(errors)) == 20  # noisy data: no two replicates alike

    # What the README says of window 6: the verdict fails, with the p-value it gives.
    rebuilt = run_block(
        code.replace('{"window": 20}', '{"window": 6}').split("\nresult = ")[0]
        + "\nresult = experiment.run()\n"
    )
    small = rebuilt["result"].get_hypothesis("lower_error").results["wider_window"]
    said = re.search(r"with `window`\s+6 instead of 20 .*?\(p=([\d.]+)\)", README_TEXT, re.DOTALL)
    assert said is not None
    assert small.outcome == "failed"
    assert f"{small.pvalue:.2g}" == said[1]


def test_the_quick_start_without_its_last_three_lines_is_an_experiment_file(
    ourtester: pytest.Pytester, summary_rows: SummaryRows
) -> None:
    code = blocks("python")[0]
    assert "experiment_smoothing.py` without its last three lines" in " ".join(README_TEXT.split())
    ourtester.makepyfile(experiment_smoothing="\n".join(code.splitlines()[:-3]))
    result = ourtester.runpytest("--crystallize", "-n", "0")
    result.assert_outcomes(passed=3)
    row = summary_rows(result)["smoothing::lower_error::wider_window"]
    assert (row["metric"], row["n"], row["verdict"]) == ("error", "20/20", "PASSED")


def test_the_statistics_block_builds_its_hypotheses() -> None:
    namespace = run_block(blocks("python")[1])
    assert namespace["better"].name == "better"
    assert namespace["not_worse"].name == "not_worse"


def test_the_sequential_block_stops_where_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    code = blocks("python")[2]
    namespace = run_block(code)
    shown = re.search(r"# (\d passed)$", code, re.MULTILINE)
    assert shown is not None
    assert capsys.readouterr().out.strip() == shown[1]
    sequential = namespace["result"].sequential
    assert sequential["schedule"] == [12, 24, 36, 48]
    assert sequential["replicates_used"] < 48  # it did stop early


def test_the_artifacts_block_builds_a_graph_that_runs() -> None:
    namespace = run_block(textwrap.dedent(ASSUMED))
    run_block(blocks("python")[3], namespace)
    results = namespace["graph"].run()
    compared = results["compare"]
    compared.raise_for_errors()
    assert set(compared.get_hypothesis("smaller_error").results) == {"median"}
    assert len(compared.metrics.baseline.metrics["abs_error"]) == 20


def options_given_to_pytest() -> set[str]:
    """The options given to pytest in the README's bash and console blocks, in its inline
    commands (`` `pytest -rA` ``), and the options it names inline (`` `--lf` ``)."""
    lines = [
        line
        for code in blocks("bash") + blocks("console")
        for line in code.replace("\\\n", " ").splitlines()
    ]
    lines += re.findall(r"`(pytest [^`]*)`", README_TEXT)
    lines += [f"pytest {option}" for option in re.findall(r"`(--?[a-zA-Z][^`]*)`", README_TEXT)]
    found = set()
    for line in lines:
        line = line.split("#", 1)[0].removeprefix("$ ")
        for command in re.split(r"&&|\|\||;|\|", line):
            words = command.split()
            if "pytest" in words:
                after = words[words.index("pytest") + 1 :]
                found.update(w.split("=")[0] for w in after if w.startswith("--"))
                found.update(w[:2] for w in after if re.fullmatch(r"-[a-zA-Z]\S*", w))
    return found


def test_the_options_the_readme_uses_exist_and_every_setting_is_in_it(
    ourtester: pytest.Pytester,
) -> None:
    used = options_given_to_pytest()
    assert {"--crystallize", "-n", "-r", "-k", "--lf"} <= used
    mentioned = set(re.findall(r"--crystallize[\w-]*\w", README_TEXT))
    helped = ourtester.runpytest("--help").stdout.str()
    missing = sorted(
        option
        for option in used | mentioned
        if not re.search(rf"(^|[\s,]){option}(?![\w-])", helped, re.MULTILINE)
    )
    assert not missing, f"README.md uses options that pytest --help does not list: {missing}"

    unknown = sorted(set(re.findall(r"\bcrystallize_\w+", README_TEXT)) - set(OPTIONS))
    assert not unknown, f"README.md names ini values that do not exist: {unknown}"
    undocumented = [
        name
        for name, option in OPTIONS.items()
        if f"`{name}`" not in README_TEXT or (option.cli and f"`{option.flag}" not in README_TEXT)
    ]
    assert not undocumented, f"settings missing from README.md's Settings table: {undocumented}"


def imported_names(folder: Path) -> set[str]:
    """The names the files under ``folder`` import ``from pytest_crystallize``."""
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "pytest_crystallize":
                names.update(alias.name for alias in node.names)
    return names


def test_every_public_name_and_every_name_the_examples_import_is_documented() -> None:
    api = API.read_text(encoding="utf-8")
    public = {
        *pytest_crystallize.__all__,
        *stats.__all__,
        *imported_names(ROOT / "examples"),
    }
    assert {"ExperimentInput", "stats", "treatment"} <= public
    undocumented = sorted(name for name in public if not re.search(rf"`{name}\b", api))
    assert not undocumented, f"public names missing from docs/api.md: {undocumented}"
    assert "(docs/api.md)" in README_TEXT


def test_the_readme_links_the_workflow_and_says_how_to_measure_coverage() -> None:
    assert "(examples/ci/github-actions.yml)" in README_TEXT
    assert (ROOT / "examples" / "ci" / "github-actions.yml").is_file()
    coverage = " ".join(README_TEXT.split())
    assert "a warm run measures less coverage" in coverage
    assert "run coverage with `--crystallize-no-cache`" in coverage
