"""``pytest --crystallize`` prints one header line with what a rerun needs to reproduce the run:
the family correction, the replicates override, the step cache and where its signing key comes
from (never the key), and how each condition is cut into chunks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_crystallize._engine.cache import KEY_ENV

SECRET = "do-not-print-this-signing-key-0123456789abcdef"
XDIST = {"no xdist": ("-p", "no:xdist"), "-n 2": ("-n", "2")}
CHUNKS = {
    "no xdist": "1 (one process)",
    "-n 2": "min(replicates, ceil(8/conditions)) (2 workers)",
}


@pytest.fixture
def run(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., pytest.RunResult]:
    """An inner session of a small experiment; the per-user key file lives in the test's own
    directory."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(ourtester.path / "config"))
    monkeypatch.delenv(KEY_ENV, raising=False)
    write_experiment(replicates=4)
    return ourtester.runpytest


def _header(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("crystallize:")]


@pytest.mark.parametrize("xdist", XDIST)
def test_the_header_names_the_correction_the_cache_its_key_file_and_the_chunks(
    run: Callable[..., pytest.RunResult], ourtester: pytest.Pytester, xdist: str
) -> None:
    result = run("--crystallize", *XDIST[xdist])
    key_file = ourtester.path / "config" / "pytest-crystallize" / "cache-signing-key"
    assert _header(result) == [
        "crystallize: correction holm; replicates override none; "
        f"cache .pytest_cache/d/crystallize-steps signed with the per-user key file {key_file}; "
        f"chunks per condition {CHUNKS[xdist]}"
    ]
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the "flat" treatment fails its gate


@pytest.mark.parametrize("xdist", XDIST)
def test_the_header_names_the_environment_key_and_the_overrides_but_never_the_key(
    run: Callable[..., pytest.RunResult],
    write_ini: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    xdist: str,
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    write_ini("crystallize_correction = bonferroni")
    result = run("--crystallize", "--crystallize-replicates", "3", *XDIST[xdist])
    assert _header(result) == [
        "crystallize: correction bonferroni; replicates override 3; "
        f"cache .pytest_cache/d/crystallize-steps signed with ${KEY_ENV}; "
        f"chunks per condition {CHUNKS[xdist]}"
    ]
    assert SECRET not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("xdist", XDIST)
def test_without_the_cacheprovider_the_header_says_the_cache_is_off(
    run: Callable[..., pytest.RunResult], xdist: str
) -> None:
    result = run(
        "--crystallize", "-p", "no:cacheprovider", "--crystallize-correction=bh", *XDIST[xdist]
    )
    assert _header(result) == [
        "crystallize: correction bh; replicates override none; "
        f"cache off (-p no:cacheprovider); chunks per condition {CHUNKS[xdist]}"
    ]
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_with_no_cache_the_header_says_the_cache_is_off(
    run: Callable[..., pytest.RunResult], write_ini: Callable[[str], Path]
) -> None:
    write_ini("crystallize_no_cache = true")
    result = run("--crystallize", "-p", "no:xdist")
    result.stdout.fnmatch_lines(
        ["crystallize: *; cache off (--crystallize-no-cache or ini crystallize_no_cache); *"]
    )


def test_there_is_no_header_line_without_crystallize(
    run: Callable[..., pytest.RunResult],
) -> None:
    result = run("-p", "no:xdist")
    assert _header(result) == []
    result.stdout.fnmatch_lines(["rootdir: *"])
