"""Trusting the step cache: its signing key is guarded like an ssh key, a cache that cannot
be used runs the session uncached (one warning, never a failed step or an INTERNALERROR), the
temporary files of killed writers are cleaned up, and a cache made on one CI runner is trusted
on another that has the same ``CRYSTALLIZE_CACHE_KEY``."""

from __future__ import annotations

import io
import os
import pickle
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from _support import (
    IN_PROCESS,
    SIGNIFICANT,
    TWO_WORKERS,
    WELCH,
    builder_source,
    chunks,
    read_lines,
    treatments_source,
    with_and_without_workers,
)

from pytest_crystallize import CrystallizeUsageError, Experiment, data_source, pipeline_step
from pytest_crystallize._engine.cache import CacheEntry, CacheStats, StepCache
from pytest_crystallize._engine.signing import (
    KEY_ENV,
    CacheWarning,
    UnusableKeyError,
    check_signing_key,
    key_file,
    signing_key,
)

pytestmark = pytest.mark.usefixtures("private_cache_key")

REPLICATES = 3
RUNS = 2 * REPLICATES  # two conditions: every run executes the cacheable step once
GOOD_KEY = "ci-secret-0123456789abcdef-0123456789"
OTHER_KEY = "another-secret-0123456789abcdef-01234"

EXPERIMENT = (
    """\
from pathlib import Path

from pytest_crystallize import Experiment, data_source, hypothesis, pipeline_step, treatment
from pytest_crystallize import verifier

LOG = Path(__file__).with_name("executions.log")


@data_source
def draw(ctx):
    return float(ctx.rng.normal())


@pipeline_step(cacheable=True)
def work(value, ctx, *, delta=0.0):
    with LOG.open("a") as handle:
        handle.write("ran\\n")
    return value + delta


@pipeline_step()
def score(value, ctx):
    return value, {"score": value}
"""
    + WELCH.format(returns=SIGNIFICANT)
    + """

@hypothesis(verifier=welch(), metrics="score")
def shifted(result):
    return result["p_value"]
"""
    + builder_source(
        "cached",
        source="draw()",
        steps=["work()", "score()"],
        treatments=treatments_source({"boost": 50.0}),
        hypotheses="shifted",
        replicates=REPLICATES,
    )
)


def write_cached(tester: pytest.Pytester) -> Path:
    """Write the experiment; return the log its cacheable step appends a line to per run."""
    tester.makepyfile(experiment_cached=EXPERIMENT)
    return tester.path / "executions.log"


def passed(dist: list[str]) -> int:
    """The passed reports of a session: the chunks of both conditions and one verdict."""
    return 2 * chunks(dist, REPLICATES) + 1


def cache_dir(tester: pytest.Pytester) -> Path:
    return tester.path / ".pytest_cache" / "d" / "crystallize-steps"


def tree(*places: Path) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under ``places``: its mode, size and modification time."""
    found = {}
    for place in places:
        for path in [place, *place.rglob("*")] if place.exists() else []:
            info = path.lstat()
            found[str(path)] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return found


def outside(tester: pytest.Pytester, tmp_path: Path) -> dict[str, Any]:
    """What a session could change outside its project: the test's own temporary folder
    (where the key file lives), the folders next to the project (but ``basetemp``, which
    pytester gives the inner session for its ``tmp_path``), and the places in the real home
    where a key or a cache would go."""
    home = Path.home()
    siblings = tester.path.parent.iterdir()
    return {
        "tree": tree(tmp_path, home / ".config" / "pytest-crystallize", home / ".crystallize"),
        "siblings": sorted(path.name for path in siblings if path.name != "basetemp"),
    }


class _CreatesAFile:
    """Unpickling this object calls ``open(path, "w")``: a stand-in for arbitrary code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> Any:
        return (io.open, (self.path, "w"))


def forge(entries: Iterable[Path], key: bytes, marker: Path) -> None:
    """Replace each entry by one correctly signed with ``key`` whose unpickling creates
    ``marker``: what a thief of the key could plant."""
    for path in entries:
        evil = CacheEntry(_CreatesAFile(marker), (), (), (), (), 0.0)
        StepCache(path.parent.parent, key=key).store(path.stem, evil, CacheStats())


def warnings_about_the_cache(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "PytestConfigWarning: crystallize:" in line]


def test_the_forged_payload_would_run_code_when_unpickled(tmp_path: Path) -> None:
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_CreatesAFile(proof))).close()
    assert proof.exists()


# --- a key file others can read or write ----------------------------------------------------


@with_and_without_workers
def test_a_key_file_that_others_can_read_or_write_is_not_trusted(
    ourtester: pytest.Pytester, tmp_path: Path, dist: list[str]
) -> None:
    log = write_cached(ourtester)
    ourtester.runpytest("--crystallize", *IN_PROCESS).assert_outcomes(passed=passed(IN_PROCESS))
    key = key_file()
    assert key.is_relative_to(tmp_path)
    entries = sorted(cache_dir(ourtester).glob("*/*.entry"))
    assert len(entries) == RUNS
    marker = ourtester.path / "unpickled"
    forge(entries, key.read_bytes(), marker)
    probe = StepCache(cache_dir(ourtester), key=key.read_bytes())
    trusted = probe.load(entries[0].stem, CacheStats())  # trusted, a forged entry runs code
    assert trusted is not None
    trusted.output.close()
    assert marker.exists()
    marker.unlink()

    modes = (0o666,) if dist == TWO_WORKERS else (0o644, 0o666)
    for mode in modes:
        key.chmod(mode)
        before = outside(ourtester, tmp_path), tree(cache_dir(ourtester))
        result = ourtester.runpytest("--crystallize", *dist)
        result.assert_outcomes(passed=passed(dist), warnings=1)
        (warning,) = warnings_about_the_cache(result.stdout.str())
        assert f"the cache signing key file {key} can be read or written by group or " in warning
        assert f"(mode 0{mode:o})" in warning
        assert warning.endswith(f"so the step cache is not used. Fix: chmod 600 {key}")
        result.stdout.fnmatch_lines(["crystallize: *; cache off (not usable: see the warnings*"])
        assert not marker.exists()  # no entry signed with that key was unpickled
        assert (outside(ourtester, tmp_path), tree(cache_dir(ourtester))) == before  # nor written
        assert "step cache:" not in result.stdout.str()
    assert len(read_lines(log)) == (1 + len(modes)) * RUNS  # every step ran in every session


def test_under_w_error_an_untrusted_key_file_stops_the_session_with_a_usage_error(
    ourtester: pytest.Pytester,
) -> None:
    log = write_cached(ourtester)
    signing_key()
    key_file().chmod(0o604)
    result = ourtester.runpytest("--crystallize", "-W", "error", *IN_PROCESS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: crystallize: the cache signing key file {key_file()} can be read or *"]
    )
    assert result.stderr.str().rstrip().endswith(f"Fix: chmod 600 {key_file()}")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert not log.exists()


def test_a_key_file_of_another_user_is_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    signing_key()  # creates the key file, 0600
    me = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: me + 1)
    with pytest.raises(UnusableKeyError) as info:
        signing_key()
    message = str(info.value)
    assert f"the cache signing key file {key_file()} belongs to another user (uid {me}; " in message
    assert message.endswith(
        f"Fix: remove it (a new key is created on the next run), or set ${KEY_ENV}"
    )


# --- keys too short ---------------------------------------------------------------------------

SHORT_ENV = "Zq7#kP"  # 6 bytes
SHORT_FILE = b"Xy9$Wv3&Tu1!Rs5"  # 15 bytes


@with_and_without_workers
@pytest.mark.parametrize("source", ["env", "file"])
def test_a_key_shorter_than_16_bytes_is_a_usage_error(
    ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dist: list[str], source: str
) -> None:
    write_cached(ourtester)
    if source == "env":
        monkeypatch.setenv(KEY_ENV, SHORT_ENV)
        secret, where = SHORT_ENV, f"${KEY_ENV} holds a 6-byte"
    else:
        key_file().parent.mkdir(parents=True, mode=0o700)
        key_file().write_bytes(SHORT_FILE)
        key_file().chmod(0o600)
        secret, where = SHORT_FILE.decode(), f"the cache signing key file {key_file()} holds a 15"
    result = ourtester.runpytest("--crystallize", *dist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {where}*cache signing key; a key needs at least 16 bytes: *secrets.token_hex*"]
    )
    output = result.stdout.str() + result.stderr.str()
    assert secret not in output
    assert "INTERNALERROR" not in output
    assert not (ourtester.path / "executions.log").exists()


def test_checking_the_key_creates_no_file_and_the_first_use_creates_it() -> None:
    check_signing_key()
    assert not key_file().parent.exists()
    key = signing_key()
    assert key_file().read_bytes() == key
    check_signing_key()


def test_a_key_of_16_bytes_is_accepted_and_15_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "k" * 16)
    assert signing_key() == b"k" * 16
    monkeypatch.setenv(KEY_ENV, "\u00e9" * 7 + "k")  # 15 bytes in UTF-8, 8 characters
    with pytest.raises(CrystallizeUsageError, match=r"holds a 15-byte cache signing key"):
        signing_key()


# --- a cache that cannot be written ----------------------------------------------------------

FULL_DISK = """\
import errno

from pytest_crystallize._engine import cache

_WRITE = cache.write_atomic


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


cache.write_atomic = _full


def pytest_unconfigure(config):
    cache.write_atomic = _WRITE
"""


def _read_only(tester: pytest.Pytester) -> tuple[str, list[str]]:
    folder = tester.path / ".pytest_cache"
    folder.mkdir(mode=0o500)
    if os.access(folder, os.W_OK):  # root: permissions are not enforced
        folder.chmod(0o700)
        pytest.skip("permissions are not enforced for this user (root)")
    # pytest's own cache warns that it cannot save its data either: shown, not an error.
    own = ["-W", "default::pytest.PytestCacheWarning"]
    return f"the step cache folder {folder / 'd'} cannot be created (Permission denied)", own


def _folder_in_the_way(tester: pytest.Pytester) -> tuple[str, list[str]]:
    cache_dir(tester).parent.mkdir(parents=True)
    cache_dir(tester).write_text("not a folder")
    return f"the step cache folder {cache_dir(tester)} cannot be created (File exists)", []


def _disk_full(tester: pytest.Pytester) -> tuple[str, list[str]]:
    tester.makeconftest(FULL_DISK)
    return f"the step cache {cache_dir(tester)} cannot be written (No space left on device)", []


def _key_cannot_be_created(tester: pytest.Pytester) -> tuple[str, list[str]]:
    key_file().parent.parent.mkdir(parents=True)
    key_file().parent.write_text("a file where the key's folder goes")
    folder = key_file().parent
    return (
        f"the cache signing key file {key_file()} cannot be created ({folder} is not a folder)",
        [],
    )


UNWRITABLE = {
    "read-only": _read_only,
    "folder-in-the-way": _folder_in_the_way,
    "disk-full": _disk_full,
    "key-cannot-be-created": _key_cannot_be_created,
}


# Each case in one process, and with two workers the read-only folder (skipped for root) and
# its stand-in that root cannot write either: the workers find the cache unusable as the
# controller does, and only the controller warns.
UNWRITABLE_SESSIONS = [
    *(pytest.param(case, IN_PROCESS, id=f"{case}-n0") for case in UNWRITABLE),
    *(pytest.param(case, TWO_WORKERS, id=f"{case}-n2") for case in list(UNWRITABLE)[:2]),
]


@pytest.mark.parametrize(("case", "dist"), UNWRITABLE_SESSIONS)
def test_a_cache_that_cannot_be_written_runs_the_session_uncached_with_one_warning(
    ourtester: pytest.Pytester, tmp_path: Path, dist: list[str], case: str
) -> None:
    log = write_cached(ourtester)
    expected, args = UNWRITABLE[case](ourtester)
    before = outside(ourtester, tmp_path)  # no key file: an unused cache needs none
    try:
        result = ourtester.runpytest("--crystallize", *args, *dist)
    finally:
        if case == "read-only":
            (ourtester.path / ".pytest_cache").chmod(0o700)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=passed(dist))
    assert "INTERNALERROR" not in out + result.stderr.str()
    (warning,) = warnings_about_the_cache(out)
    assert expected in warning
    hint = "so steps run uncached (--crystallize-no-cache turns the cache off without a warning)"
    assert warning.endswith(hint if case != "key-cannot-be-created" else "at least 16 bytes")
    result.stdout.fnmatch_lines(["crystallize: *; cache off (not usable: see the warnings*"])
    assert len(read_lines(log)) == RUNS  # every step ran, uncached
    assert "step cache:" not in out
    assert not list(cache_dir(ourtester).glob("*/*.entry"))  # (none when it is not a folder)
    assert outside(ourtester, tmp_path) == before


# --- leftovers of killed writers --------------------------------------------------------------


def plant_leftovers(root: Path) -> tuple[list[Path], Path]:
    """Temporary files as killed writers leave them, an hour old, and one newer than the
    session (a write another session has in progress); return (old ones, new one)."""
    old = [
        root / "ab" / f".{'ab' * 32}.entry.x1y2z3.tmp",
        root / "cd" / f".{'cd' * 32}.entry.q9w8e7.tmp",
        root / ".write-check-12345.tmp",
    ]
    new = root / "ef" / f".{'ef' * 32}.entry.n3w4n3.tmp"
    for path in [*old, new]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half an entry")
    for path in old:
        os.utime(path, (time.time() - 3600,) * 2)
    os.utime(new, (time.time() + 3600,) * 2)
    return old, new


@with_and_without_workers
def test_leftovers_of_killed_writers_are_removed_by_cache_clear_and_by_the_size_cap(
    ourtester: pytest.Pytester, write_ini: Any, dist: list[str]
) -> None:
    log = write_cached(ourtester)
    old, new = plant_leftovers(cache_dir(ourtester))
    cleared = ourtester.runpytest("--crystallize", "--crystallize-cache-clear", *dist)
    cleared.assert_outcomes(passed=passed(dist))
    assert not any(path.exists() for path in old)
    assert new.exists()
    assert len(list(cache_dir(ourtester).glob("*/*.entry"))) == RUNS

    old, new = plant_leftovers(cache_dir(ourtester))
    write_ini("crystallize_cache_max_mb = 100")
    capped = ourtester.runpytest("--crystallize", *dist)
    capped.assert_outcomes(passed=passed(dist))
    assert not any(path.exists() for path in old)
    assert new.exists()
    assert len(list(cache_dir(ourtester).glob("*/*.entry"))) == RUNS  # all under the cap
    assert len(read_lines(log)) == RUNS  # the second session was served from the cache


def test_clear_and_evict_in_scripts_remove_leftovers_older_than_the_process(
    tmp_path: Path,
) -> None:
    cache = StepCache(tmp_path / "c", key=b"k" * 16)
    cache.store("ab" * 32, CacheEntry(1.0, (), (), (), (), 0.0), CacheStats())
    old, new = plant_leftovers(tmp_path / "c")
    assert cache.evict(10**9) == 0
    assert not any(path.exists() for path in old)
    assert new.exists()
    old, new = plant_leftovers(tmp_path / "c")
    assert cache.clear() == 1
    assert not any(path.exists() for path in old)
    assert new.exists()


# --- a cache shared by CI runners -------------------------------------------------------------


@with_and_without_workers
def test_a_cache_made_on_one_runner_is_trusted_on_another_with_the_same_key(
    ourtester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    dist: list[str],
) -> None:
    def runner(name: str, key: str, mode: list[str] = dist) -> pytest.RunResult:
        home = tmp_path / name  # another machine: another home, no key file in common
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        monkeypatch.setenv(KEY_ENV, key)
        return ourtester.runpytest("--crystallize", "-v", *mode)

    log = write_cached(ourtester)
    cold = runner("runner-a", GOOD_KEY, IN_PROCESS)  # entries do not depend on the process
    cold.assert_outcomes(passed=passed(IN_PROCESS))
    cold.stdout.fnmatch_lines([f"step cache: 0 hits, {RUNS} misses, *"])

    warm = runner("runner-b", GOOD_KEY)  # the cache restored on another runner
    warm.assert_outcomes(passed=passed(dist))
    warm.stdout.fnmatch_lines([f"step cache: {RUNS} hits, 0 misses, *"])
    assert warm.stdout.str().count("PASSED (cached)") == passed(dist) - 1
    assert len(read_lines(log)) == RUNS  # every cacheable step was served from the cache
    assert not (tmp_path / "runner-b").exists()  # and no key file was needed

    marker = ourtester.path / "unpickled"
    forge(sorted(cache_dir(ourtester).glob("*/*.entry")), GOOD_KEY.encode(), marker)
    other = runner("runner-b", OTHER_KEY)  # a cache its key did not sign
    other.assert_outcomes(passed=passed(dist))
    other.stdout.fnmatch_lines([f"step cache: 0 hits, {RUNS} misses*"])
    assert not marker.exists()  # never unpickled
    assert len(read_lines(log)) == 2 * RUNS


# --- scripts ----------------------------------------------------------------------------------


@data_source
def one(ctx: Any) -> float:
    return 1.0


@pipeline_step(cacheable=True)
def logged(value: float, ctx: Any, *, log: str) -> float:
    with open(log, "a") as handle:
        handle.write("ran\n")
    return value + float(ctx.rng.normal())


@pipeline_step()
def record(value: float, ctx: Any) -> Any:
    return value, {"score": value}


def script_experiment(log: Path) -> Experiment:
    return (
        Experiment.builder("trust_script")
        .datasource(one())
        .add_step(logged(log=str(log)))
        .add_step(record())
        .replicates(2)
        .build()
    )


@pytest.mark.usefixtures("in_tmp_path")
def test_in_a_script_an_untrusted_key_file_warns_and_no_entry_is_read_or_written(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log"
    exp = script_experiment(log)
    exp.run()
    root = tmp_path / ".crystallize" / "cache"
    marker = tmp_path / "unpickled"
    forge(root.glob("*/*.entry"), key_file().read_bytes(), marker)
    key_file().chmod(0o640)
    before = tree(root)
    with pytest.warns(CacheWarning) as caught:
        result = exp.run()
    (warning,) = [str(w.message) for w in caught]
    assert warning.endswith(f"Fix: chmod 600 {key_file()}")
    assert "(mode 0640)" in warning
    assert not result.errors
    assert result.cache_stats["hits"] == 0
    assert result.cache_stats["bytes_written"] == 0
    assert not marker.exists()
    assert tree(root) == before
    assert len(read_lines(log)) == 4


@pytest.mark.usefixtures("in_tmp_path")
def test_in_a_script_a_short_key_is_an_error_naming_its_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SHORT_ENV)
    result = script_experiment(tmp_path / "log").run()
    assert len(result.errors) == 2
    for error in result.errors.values():
        assert error.exc_type == "CrystallizeUsageError"
        assert error.message.startswith(f"${KEY_ENV} holds a 6-byte cache signing key")
        assert SHORT_ENV not in error.message
    with pytest.raises(Exception, match="6-byte cache signing key"):
        result.raise_for_errors()


@pytest.mark.usefixtures("in_tmp_path")
def test_in_a_script_a_cache_that_cannot_be_written_warns_once_and_runs_uncached(
    tmp_path: Path,
) -> None:
    (tmp_path / ".crystallize").write_text("a file where the cache folder goes")
    log = tmp_path / "log"
    with pytest.warns(CacheWarning) as caught:
        result = script_experiment(log).run()
    assert [str(w.message) for w in caught] == [
        f"the step cache {Path('.crystallize') / 'cache'} cannot be written (Not a directory); "
        "entries are not stored"
    ]
    assert not result.errors
    assert result.cache_stats["misses"] == 2
    assert len(read_lines(log)) == 2
