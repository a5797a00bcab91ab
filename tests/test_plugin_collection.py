"""Opting in and collection: which files become experiments, item ids, options, errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _support import TWO_WORKERS, in_every_mode, line_of

CHUNK_IDS = [
    "experiment_demo.py::demo::baseline::chunk-0",
    "experiment_demo.py::demo::boost::chunk-0",
    "experiment_demo.py::demo::flat::chunk-0",
]


def collected_ids(result: pytest.RunResult) -> list[str]:
    """The item ids printed by ``--collect-only -q``."""
    return [line for line in result.outlines if "::chunk-" in line and " " not in line]


# --- opting in ----------------------------------------------------------------------------


def test_without_the_flag_an_experiment_file_is_not_collected(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment()
    result = ourtester.runpytest()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["collected 0 items", "*no tests ran*"])


def test_without_the_flag_the_plugin_imports_no_numpy_scipy_or_collection_code(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    # The plugin loads in every pytest run of every project that installs it: off, it must
    # cost next to nothing. A fresh interpreter shows what a plain run imported.
    write_experiment()
    ourtester.makepyfile(test_plain="def test_one():\n    pass\n")
    code = (
        "import sys, pytest\n"
        "pytest.main([])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy')"
        " or m.startswith(('pytest_crystallize._harness.collect',"
        " 'pytest_crystallize._harness.board')))\n"
        "print('heavy modules:', heavy)\n"
    )
    result = ourtester.run(sys.executable, "-c", code)
    result.stdout.fnmatch_lines(["*1 passed*", "heavy modules: []"])


def test_ini_crystallize_true_collects_without_the_flag(
    ourtester: pytest.Pytester,
    write_ini: Callable[[str], Path],
    write_experiment: Callable[..., Path],
) -> None:
    write_ini("crystallize = true")
    write_experiment()
    result = ourtester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert collected_ids(result) == CHUNK_IDS


def test_ini_crystallize_files_replaces_the_file_patterns(
    ourtester: pytest.Pytester,
    write_ini: Callable[[str], Path],
    write_experiment: Callable[..., Path],
) -> None:
    write_ini("crystallize_files = trial_*.py")
    write_experiment("trial_speed")
    write_experiment("experiment_demo")  # the default pattern no longer applies
    result = ourtester.runpytest("--crystallize", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert collected_ids(result) == [i.replace("experiment_demo", "trial_speed") for i in CHUNK_IDS]


def test_the_default_patterns_match_both_prefix_and_suffix_names(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    # Experiment names are unique in a session: the second file names its experiment "speed".
    write_experiment("speed_experiment", experiments={"speed": {"boost": 5.0, "flat": 0.0}})
    write_experiment("experiment_demo")
    write_experiment("demo_trial", experiments={"trial": {"boost": 5.0}})  # matches no pattern
    result = ourtester.runpytest("--crystallize", "--collect-only", "-q")
    ids = collected_ids(result)
    speed = [i.replace("experiment_demo.py::demo", "speed_experiment.py::speed") for i in CHUNK_IDS]
    assert ids == CHUNK_IDS + speed


def test_disabling_the_plugin_makes_the_flag_a_usage_error(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment()
    result = ourtester.runpytest("-p", "no:crystallize", "--crystallize")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*error: unrecognized arguments: --crystallize*"])


def test_help_shows_the_crystallize_group_its_options_and_ini_values(
    ourtester: pytest.Pytester,
) -> None:
    result = ourtester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "crystallize (statistically gated experiments):",
            "  --crystallize *collect experiment files*",
            "  --crystallize-replicates=N",
            "*run every experiment with N replicates*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "  crystallize (bool):*collect experiment files without --crystallize",
            "  crystallize_files (args):",
            "*glob patterns of experiment files (default:",
            "*experiment_*.py *_experiment.py)",
        ]
    )


def test_a_matching_file_without_an_experiment_is_not_an_error(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_helpers="from __future__ import annotations\n\nSIZE = 3\n")
    result = ourtester.runpytest("--crystallize")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["collected 0 items", "*no tests ran*"])
    result.stdout.no_fnmatch_line("*ERROR*")


# --- item ids and chunk layout ------------------------------------------------------------


def test_chunk_items_are_named_file_experiment_condition_chunk(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "--collect-only", "-q", "-n", "0")
    assert result.ret == pytest.ExitCode.OK
    assert collected_ids(result) == CHUNK_IDS
    result.stdout.fnmatch_lines(["5 tests collected in *"])


def test_collect_only_also_lists_the_verdict_items_and_counts_them(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment()
    result = ourtester.runpytest("--crystallize", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "selected 3 chunks and 2 verdicts (reported once their chunks have run)",
            *CHUNK_IDS,
            "experiment_demo.py::demo::by_p::boost",
            "experiment_demo.py::demo::by_p::flat",
        ]
    )
    # Collecting runs nothing, so no verdict is reported and nothing is summarised.
    result.stdout.no_fnmatch_line("*= crystallize =*")


def test_the_collector_is_named_after_the_experiment_not_the_variable(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    path = write_experiment(experiments={"speed": {"boost": 5.0}})
    path.write_text(path.read_text().replace("\nspeed = (", "\nmy_variable = ("))
    result = ourtester.runpytest("--crystallize", "--collect-only", "-q")
    assert collected_ids(result) == [
        "experiment_demo.py::speed::baseline::chunk-0",
        "experiment_demo.py::speed::boost::chunk-0",
    ]


def test_every_module_level_experiment_in_a_file_is_collected_in_definition_order(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(experiments={"second": {"boost": 5.0}, "first": {"lift": 1.0}})
    result = ourtester.runpytest("--crystallize", "--collect-only", "-q")
    assert collected_ids(result) == [
        "experiment_demo.py::second::baseline::chunk-0",
        "experiment_demo.py::second::boost::chunk-0",
        "experiment_demo.py::first::baseline::chunk-0",
        "experiment_demo.py::first::lift::chunk-0",
    ]


def test_more_workers_give_more_chunks_covering_the_same_conditions(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(replicates=12)
    counts = {}
    for workers in ("0", "2", "4"):
        ids = collected_ids(
            ourtester.runpytest("--crystallize", "--collect-only", "-q", "-n", workers)
        )
        conditions = {i.split("::")[2] for i in ids}
        assert conditions == {"baseline", "boost", "flat"}
        counts[workers] = len(ids)
    assert counts["0"] == 3  # one chunk per condition in a single process
    assert counts["0"] < counts["2"] < counts["4"]


def test_crystallize_replicates_overrides_the_replicate_count(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment(replicates=8)
    result = ourtester.runpytest("--crystallize", "--crystallize-replicates", "4", "-rA")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*p=1*, alpha=0.05, n=4 vs 4*",
            "demo*by_p*boost*score*4/4*->*PASSED",
            "demo*by_p*flat*score*4/4*FAILED",
        ]
    )


@pytest.mark.parametrize("value", ["0", "-3", "abc", "2.5"])
def test_crystallize_replicates_rejects_anything_but_a_positive_whole_number(
    ourtester: pytest.Pytester, value: str
) -> None:
    result = ourtester.runpytest("--crystallize", f"--crystallize-replicates={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*error: argument --crystallize-replicates: expected a positive whole number of "
            f"replicates, got {value!r}"
        ]
    )


# --- collection errors --------------------------------------------------------------------


@in_every_mode
def test_a_file_that_fails_to_import_is_a_collection_error_at_the_users_line(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(
        experiment_bad="""\
        from __future__ import annotations

        raise RuntimeError("the data directory is missing")
        """
    )
    result = ourtester.runpytest("--crystallize", *dist)
    # xdist reports a worker's collection error as a failure instead of an interruption.
    interrupted = pytest.ExitCode.TESTS_FAILED if dist == TWO_WORKERS else 2
    assert result.ret == interrupted
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting experiment_bad.py*",
            "*experiment_bad.py:3: RuntimeError: the data directory is missing",
        ]
    )


def test_a_collection_error_in_one_file_gives_no_verdicts_for_experiments_that_never_ran(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    write_experiment()
    ourtester.makepyfile(experiment_bad="raise RuntimeError('the data directory is missing')\n")
    result = ourtester.runpytest("--crystallize")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    # The collection error is the one problem to report; pytest ran nothing at all.
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Interrupted: 1 error during collection*"])
    result.stdout.no_fnmatch_line("*did not run*")


def test_an_experiment_that_fails_validation_is_a_collection_error_at_its_build_call(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    path = write_experiment()
    path.write_text(path.read_text().replace("{'delta': 0.0}", "{'seed': 1}"))
    build = line_of(path, ".build()")
    result = ourtester.runpytest("--crystallize")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting experiment_demo.py*",
            f"*experiment_demo.py:{build}: *ExperimentDefinitionError: experiment 'demo': "
            "treatment 'flat' sets the reserved key 'seed'; condition, replicate, seed are set "
            "for each run",
        ]
    )


def test_two_experiments_with_one_name_are_a_collection_error(
    ourtester: pytest.Pytester, write_experiment: Callable[..., Path]
) -> None:
    path = write_experiment(experiments={"demo": {"boost": 5.0}, "other": {"lift": 1.0}})
    path.write_text(path.read_text().replace('builder("other")', 'builder("demo")'))
    result = ourtester.runpytest("--crystallize")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*two experiments are named 'demo'; give each a unique name*"])
