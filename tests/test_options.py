"""Every command-line option has an ini twin of the same name; the command line wins.

One case per row of the plugin's option table: the ini value takes effect, the command line
overrides it, and a bad value fails the run with a usage error naming the option and the value,
from the ini file and from the command line alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_crystallize._harness.options import OPTIONS
from pytest_crystallize._store.baselines import baseline_path, save

# The inner run prints the effective value of every setting at its end, whatever its outcome.
CONFTEST = """
from __future__ import annotations

from pytest_crystallize._harness.options import OPTIONS, setting


def pytest_terminal_summary(terminalreporter, config):
    for name, option in OPTIONS.items():
        value = config.getoption(name) if option.cli else setting(config, name)
        terminalreporter.write_line(f"effective {name} = {value!r}")
"""


@dataclass(frozen=True)
class Case:
    ini: str  # a good ini value
    ini_value: object  # what it means
    cli: tuple[str, ...]  # command-line arguments that say something else
    cli_value: object  # what they mean
    bad: str | None  # a value the option rejects (None: every string is a good value)
    extra_ini: str = ""  # other settings the option needs


CASES: dict[str, Case] = {
    "crystallize": Case("true", True, ("--crystallize",), True, "maybe"),
    "crystallize_replicates": Case("3", 3, ("--crystallize-replicates", "5"), 5, "zero"),
    "crystallize_no_cache": Case("true", True, ("--crystallize-no-cache",), True, "maybe"),
    "crystallize_cache_clear": Case("true", True, ("--crystallize-cache-clear",), True, "maybe"),
    "crystallize_alpha": Case("0.01", 0.01, ("--crystallize-alpha", "0.1"), 0.1, "5%"),
    "crystallize_correction": Case(
        "bonferroni", "bonferroni", ("--crystallize-correction", "bh"), "bh", "sidak"
    ),
    "crystallize_inconclusive": Case(
        "skip", "skip", ("--crystallize-inconclusive", "pass"), "pass", "maybe"
    ),
    "crystallize_plan": Case("5%", (0.05, True), ("--crystallize-plan", "0.5"), (0.5, False), "0"),
    "crystallize_json": Case(
        "ini.json", "ini.json", ("--crystallize-json", "cli.json"), "cli.json", None
    ),
    "crystallize_md": Case("ini.md", "ini.md", ("--crystallize-md", "cli.md"), "cli.md", None),
    "crystallize_no_step_summary": Case(
        "true", True, ("--crystallize-no-step-summary",), True, "maybe"
    ),
    "crystallize_html": Case(
        "ini.html", "ini.html", ("--crystallize-html", "cli.html"), "cli.html", None
    ),
    "crystallize_save": Case("main", "main", ("--crystallize-save", "other"), "other", "../up"),
    "crystallize_compare": Case(
        "main", "main", ("--crystallize-compare", "other"), "other", "../up"
    ),
    "crystallize_compare_fail": Case(
        "total:-5%",
        ["total:-5%"],
        ("--crystallize-compare-fail", "total:+1", "--crystallize-compare-fail", "n:-2"),
        ["total:+1", "n:-2"],
        "total:5%",
        extra_ini="crystallize_compare = main",
    ),
    "crystallize_compare_missing": Case(
        "fail", "fail", ("--crystallize-compare-missing", "skip"), "skip", "error"
    ),
    "crystallize_lower_is_better": Case(
        "latency",
        ["latency"],
        ("--crystallize-lower-is-better", "loss", "--crystallize-lower-is-better", "ms"),
        ["loss", "ms"],
        "latency:-1",
    ),
    "crystallize_progress_interval": Case(
        "5", 5.0, ("--crystallize-progress-interval", "0"), 0.0, "-1"
    ),
    "crystallize_sequential": Case("off", "off", ("--crystallize-sequential", "3"), 3, "1"),
    "crystallize_executor": Case(
        "serial", "serial", ("--crystallize-executor", "plugin"), "plugin", "threads"
    ),
    "crystallize_dask": Case(
        "tcp://ini-host:8786",
        "tcp://ini-host:8786",
        ("--crystallize-dask", "cli-host:8786"),
        "cli-host:8786",
        "http//nowhere",
    ),
    "crystallize_shard": Case(
        "1/2",
        (1, 2),
        ("--crystallize-shard", "2/3"),
        (2, 3),
        "4/3",
        extra_ini="crystallize_json = shard.json",
    ),
    "crystallize_merge": Case(
        "ini.json", ["ini.json"], ("--crystallize-merge", "cli.json"), ["cli.json"], "shard-1"
    ),
}
# An empty shard report, which --crystallize-merge reads when a case above names it.
EMPTY_SHARD = {
    "shard": {"index": 1, "count": 1, "packages": {}, "experiments": []},
}
CLI_ROWS = sorted(name for name, option in OPTIONS.items() if option.cli)


def test_every_command_line_option_has_a_case_here_and_an_ini_twin(
    ourtester: pytest.Pytester,
) -> None:
    assert sorted(CASES) == CLI_ROWS
    result = ourtester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    out = result.stdout.str()
    flags = set(re.findall(r"^  (--crystallize[\w-]*)", out, flags=re.MULTILINE))
    assert flags == {"--" + name.replace("_", "-") for name in CLI_ROWS}
    inis = set(re.findall(r"^  (crystallize\w*) \(", out, flags=re.MULTILINE))
    assert inis == set(OPTIONS)


@pytest.fixture
def settings_tester(
    ourtester: pytest.Pytester, write_ini: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., pytest.RunResult]:
    """``run(ini_lines, *args)``: an inner run with these ini lines, and a conftest that prints
    the effective settings; baselines ``main`` and ``other`` exist, so comparing works."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    ourtester.makeconftest(CONFTEST)
    for name in ("main", "other"):
        save(baseline_path(ourtester.path, name), {})
    for name in ("ini.json", "cli.json"):
        (ourtester.path / name).write_text(json.dumps(EMPTY_SHARD), encoding="utf-8")

    def run(ini: str, *args: str) -> pytest.RunResult:
        write_ini(ini)
        return ourtester.runpytest("-p", "no:xdist", *args)

    return run


def _effective(result: pytest.RunResult, name: str) -> str:
    prefix = f"effective {name} = "
    found = [line[len(prefix) :] for line in result.outlines if line.startswith(prefix)]
    assert len(found) == 1, result.stdout.str() + result.stderr.str()
    return found[0]


def _enable(name: str) -> tuple[str, ...]:
    return () if name == "crystallize" else ("--crystallize",)


@pytest.mark.parametrize("name", CLI_ROWS)
def test_the_ini_twin_sets_the_option(
    settings_tester: Callable[..., pytest.RunResult], name: str
) -> None:
    case = CASES[name]
    result = settings_tester(f"{name} = {case.ini}\n{case.extra_ini}", *_enable(name))
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    assert _effective(result, name) == repr(case.ini_value)


@pytest.mark.parametrize("name", CLI_ROWS)
def test_the_command_line_overrides_the_ini_twin(
    settings_tester: Callable[..., pytest.RunResult], name: str
) -> None:
    case = CASES[name]
    # A switch can only be turned on, so its ini twin says false here.
    ini = "false" if OPTIONS[name].kind == "flag" else case.ini
    result = settings_tester(f"{name} = {ini}\n{case.extra_ini}", *_enable(name), *case.cli)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    assert _effective(result, name) == repr(case.cli_value)


BAD = sorted(name for name, case in CASES.items() if case.bad is not None)


def test_only_free_text_options_have_no_bad_value() -> None:
    free = {n for n, o in OPTIONS.items() if o.cli and o.kind == "value" and o.parse is None}
    assert (
        set(CLI_ROWS) - set(BAD)
        == free
        == {"crystallize_json", "crystallize_md", "crystallize_html"}
    )


@pytest.mark.parametrize("name", BAD)
def test_a_bad_ini_value_is_a_usage_error_naming_the_option_and_the_value(
    settings_tester: Callable[..., pytest.RunResult], name: str
) -> None:
    case = CASES[name]
    result = settings_tester(f"{name} = {case.bad}\n{case.extra_ini}", *_enable(name))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: ini {name} *{case.bad!r}*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("name", BAD)
def test_a_bad_ini_value_is_an_error_even_where_the_command_line_overrides_it(
    settings_tester: Callable[..., pytest.RunResult], name: str
) -> None:
    case = CASES[name]
    result = settings_tester(f"{name} = {case.bad}\n{case.extra_ini}", *_enable(name), *case.cli)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: ini {name} *{case.bad!r}*"])


@pytest.mark.parametrize("name", BAD)
def test_a_bad_command_line_value_is_a_usage_error_naming_the_option_and_the_value(
    settings_tester: Callable[..., pytest.RunResult], name: str
) -> None:
    case = CASES[name]
    flag = "--" + name.replace("_", "-")
    # A switch takes no value: `--switch=maybe` is the bad spelling.
    result = settings_tester(case.extra_ini, *_enable(name), f"{flag}={case.bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*error: argument {flag}: *{case.bad!r}*"])


# --- the values take effect, not only their parsing -----------------------------------------


def test_ini_replicates_and_json_take_effect_and_the_command_line_path_wins(
    ourtester: pytest.Pytester,
    write_ini: Callable[[str], Path],
    write_experiment: Callable[..., Path],
    summary_rows: Callable[[pytest.RunResult], dict[str, dict[str, str]]],
) -> None:
    write_experiment(replicates=8)
    write_ini("crystallize_replicates = 3\ncrystallize_json = ini.json")
    result = ourtester.runpytest("--crystallize", "-p", "no:xdist")
    assert summary_rows(result)["demo::by_p::boost"]["n"] == "3/3"
    assert (ourtester.path / "ini.json").is_file()
    (ourtester.path / "ini.json").unlink()
    result = ourtester.runpytest(
        "--crystallize",
        "-p",
        "no:xdist",
        "--crystallize-replicates",
        "4",
        "--crystallize-json",
        "cli.json",
    )
    assert summary_rows(result)["demo::by_p::boost"]["n"] == "4/4"
    assert (ourtester.path / "cli.json").is_file()
    assert not (ourtester.path / "ini.json").exists()


def test_xdist_workers_use_the_ini_values(
    ourtester: pytest.Pytester,
    write_ini: Callable[[str], Path],
    write_experiment: Callable[..., Path],
    summary_rows: Callable[[pytest.RunResult], dict[str, dict[str, str]]],
) -> None:
    write_experiment(replicates=8)
    write_ini("crystallize_replicates = 2")
    result = ourtester.runpytest("--crystallize", "-n", "2")
    assert summary_rows(result)["demo::by_p::boost"]["n"] == "2/2"
