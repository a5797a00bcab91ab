"""The decorators keep the decorated functions' signatures for type checkers.

``tests/typing/experiment_ok.py`` must pass ``mypy --strict``; in
``tests/typing/experiment_bad.py`` mypy must report exactly the lines marked
``# E: <error code>``, each with its code. CI runs the same two commands::

    python -m mypy --strict tests/typing/experiment_ok.py
    python -m mypy --strict tests/typing/experiment_bad.py   (must exit 1)

``tests/typing/experiment_untyped.py``, the same without annotations, must pass mypy when it
allows unannotated functions: the decorators raise no false alarm on untyped code.
"""

from __future__ import annotations

import importlib.util
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TYPING = ROOT / "tests" / "typing"
MARKER = re.compile(r"#\s*E:\s*(?P<codes>[a-z][a-z0-9-]*(?:\s*,\s*[a-z][a-z0-9-]*)*)\s*$")
REPORTED = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: .*\[(?P<code>[a-z][a-z0-9-]*)\]$")

needs_mypy = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (pip install -e '.[test]'); the typing examples need it",
)


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for both mypy runs of this module (the second reuses the first's work)."""
    return tmp_path_factory.mktemp("mypy_cache")


def run_mypy(path: Path, cache: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``python -m mypy --strict path`` from the repository root (so with its config)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            *flags,
            "--no-pretty",
            "--show-error-codes",
            "--cache-dir",
            str(cache),
            str(path.relative_to(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def expected_errors(path: Path) -> set[tuple[int, str]]:
    """The ``(line, code)`` pairs that ``# E: code`` comments mark."""
    expected = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        found = MARKER.search(line)
        if found:
            expected.update((number, code.strip()) for code in found["codes"].split(","))
    return expected


def reported_errors(stdout: str, path: Path) -> set[tuple[int, str]]:
    """The ``(line, code)`` pairs of the errors mypy reported in ``path``."""
    reported = set()
    for line in stdout.splitlines():
        found = REPORTED.match(line)
        if found and Path(found["path"]).name == path.name:
            reported.add((int(found["line"]), found["code"]))
    return reported


@needs_mypy
def test_the_typed_tutorial_style_experiment_passes_mypy_strict(mypy_cache: Path) -> None:
    done = run_mypy(TYPING / "experiment_ok.py", mypy_cache)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout


@needs_mypy
def test_mypy_strict_reports_each_marked_mistake_with_its_code_and_nothing_else(
    mypy_cache: Path,
) -> None:
    path = TYPING / "experiment_bad.py"
    expected = expected_errors(path)
    assert len(expected) >= 10, "the markers were not found"

    done = run_mypy(path, mypy_cache)

    assert done.returncode == 1, done.stdout + done.stderr
    reported = reported_errors(done.stdout, path)
    missed = sorted(expected - reported)
    unexpected = sorted(reported - expected)
    assert (missed, unexpected) == ([], []), (
        f"marked but not reported (line, code): {missed}\n"
        f"reported but not marked (line, code): {unexpected}\n\nmypy said:\n{done.stdout}"
    )


@needs_mypy
def test_an_unannotated_experiment_raises_no_false_alarm(mypy_cache: Path) -> None:
    untyped = ("--allow-untyped-defs", "--allow-incomplete-defs", "--allow-untyped-calls")
    done = run_mypy(TYPING / "experiment_untyped.py", mypy_cache, *untyped)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.usefixtures("in_tmp_path")  # what it writes (data/typed) stays in tmp_path
def test_the_typed_experiment_also_runs(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(TYPING / "experiment_ok.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "baseline total: [0.0, 0.0, 0.0, 0.0]" in out
    assert "errors: {}" in out


def test_the_unannotated_experiment_builds() -> None:
    namespace = runpy.run_path(str(TYPING / "experiment_untyped.py"))
    assert namespace["experiment"].replicates == 3


def test_the_mistakes_file_imports_without_running_a_mistake() -> None:
    namespace = runpy.run_path(str(TYPING / "experiment_bad.py"))
    assert callable(namespace["wrong_step_arguments"])


def test_the_marker_and_report_parsers_agree_on_a_sample(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("x = 1\ny: int = 'a'  # E: assignment\nz = f(1)  # E: call-arg, arg-type\n")
    stdout = (
        f"{sample}:2: error: Incompatible types in assignment  [assignment]\n"
        f"{sample}:3: note: a note  [misc]\n"
        f"{sample}:3: error: Too many arguments  [call-arg]\n"
    )
    assert expected_errors(sample) == {(2, "assignment"), (3, "call-arg"), (3, "arg-type")}
    assert reported_errors(stdout, sample) == {(2, "assignment"), (3, "call-arg")}
