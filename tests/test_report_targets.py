"""Reports go where they are asked to, and say what they are: symlinks are followed, FIFOs and
descriptors are written in place, regular files are replaced atomically; an unwritable path
is a usage error before anything runs (a warning for ``$GITHUB_STEP_SUMMARY``); a write that
fails at the end is one line, not a traceback. (Escaping: tests/test_report_escaping.py.)

No test here writes to a real device: FIFOs and files are made in the test's own folders.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import chunks, with_and_without_workers

from pytest_crystallize._engine import atomic
from pytest_crystallize._engine.atomic import report_problem, write_report

pytestmark = pytest.mark.usefixtures("private_cache_key", "no_step_summary")

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
as_root = hasattr(os, "geteuid") and os.geteuid() == 0
needs_permissions = pytest.mark.skipif(as_root, reason="root may write without permission")
ONE_PASS = {"demo": {"boost": 5.0}}  # one verdict, passed: the session passes
HINT = "choose a file path you can write to (missing folders are created)"


@pytest.fixture
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outer run may itself be a GitHub Actions step: its summary is not ours."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


Tree = dict[str, tuple[Any, ...]]


def tree(root: Path) -> Tree:
    """What is under ``root``: kind, permission bits and content (a link: its target),
    without what every session writes (``.pytest_cache``, ``__pycache__``, the experiments'
    artifact folders under ``data``, the cache key under ``xdg``: see ``private_cache_key``)."""
    found: Tree = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".pytest_cache", "__pycache__", "data", "xdg")]
        for name in dirs + files:
            path = Path(folder) / name
            key = path.relative_to(root).as_posix()
            info = path.lstat()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                found[key] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[key] = ("folder", mode)
            elif stat.S_ISFIFO(info.st_mode):
                found[key] = ("fifo", mode)
            else:
                found[key] = ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def file_entry(path: Path, mode: int) -> tuple[Any, ...]:
    return ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())


@contextlib.contextmanager
def fifo_reader(fifo: Path) -> Iterator[list[bytes]]:
    """Read ``fifo`` to its end in a thread; what it read is in the yielded list afterwards.
    If nothing ever opened the FIFO for writing, the reader is released (never a hang)."""
    received: list[bytes] = []
    thread = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    thread.start()
    try:
        yield received
    finally:
        if thread.is_alive():
            with contextlib.suppress(OSError):  # ENXIO: the reader is already gone
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)


# --- writing where the path leads (no pytest session) ---------------------------------------


def test_a_symlink_stays_a_symlink_and_its_target_is_replaced_keeping_its_permissions(
    tmp_path: Path,
) -> None:
    real = tmp_path / "shared" / "report.json"
    real.parent.mkdir()
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "report.json"
    link.symlink_to(Path("shared") / "report.json")
    dangling = tmp_path / "new.md"
    dangling.symlink_to(tmp_path / "missing" / "folder" / "new.md")

    write_report(link, "new\n")
    write_report(dangling, "made\n")

    assert os.readlink(link) == str(Path("shared") / "report.json")
    assert real.read_text() == "new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert (tmp_path / "missing" / "folder" / "new.md").read_text() == "made\n"
    assert dangling.is_symlink()
    assert sorted(p.name for p in real.parent.iterdir()) == ["report.json"]  # no temp file


@needs_fifo
def test_a_fifo_is_written_in_place_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    assert report_problem(fifo) is None  # checking never opens it (that would block)
    with fifo_reader(fifo) as received:
        write_report(fifo, "through the pipe\n")
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="no /dev/fd on this platform")
def test_a_descriptor_path_is_written_after_what_the_process_wrote_never_over_it(
    tmp_path: Path,
) -> None:
    # As with ``--crystallize-json /dev/stdout > out.txt``: /dev/fd/N leads to a regular
    # file the process already writes to; the report goes at its position, not over it.
    out = tmp_path / "out.txt"
    with out.open("wb", buffering=0) as handle:
        handle.write(b"before\n")
        write_report(Path(f"/dev/fd/{handle.fileno()}"), "report\n")
        handle.write(b"after\n")
    assert out.read_bytes() == b"before\nreport\nafter\n"
    closed = os.open(tmp_path, os.O_RDONLY)
    os.close(closed)  # a descriptor number that is not open: nothing there, never created
    problem = report_problem(Path(f"/dev/fd/{closed}"))
    assert problem == "no such descriptor or stream is open (it is never created)"
    with pytest.raises(FileNotFoundError, match="no such descriptor or stream is open"):
        write_report(Path(f"/dev/fd/{closed}"), "lost\n")


def test_report_problem_says_why_a_path_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file\n")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert report_problem(tmp_path) == "it is a folder, not a file"
    assert report_problem(tmp_path / "notes.txt" / "r.json") == (
        f"its folder cannot be created: {str(tmp_path / 'notes.txt')!r} is a file, not a folder"
    )
    assert report_problem(loop) == "it cannot be reached (Too many levels of symbolic links)"
    assert report_problem(tmp_path / "new" / "deeper" / "r.json") is None  # folders are made
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        write_report(tmp_path, "x")


@needs_permissions
def test_report_problem_says_when_permissions_forbid_the_write(tmp_path: Path) -> None:
    locked = tmp_path / "locked.json"
    locked.write_text("{}\n")
    locked.chmod(0o444)
    shut = tmp_path / "shut"
    shut.mkdir()
    (shut / "r.json").write_text("{}\n")
    shut.chmod(0o555)
    try:
        assert report_problem(locked) == "the file is not writable (no write permission)"
        problem = report_problem(shut / "r.json")
        assert problem is not None
        assert problem.startswith(f"its folder {str(shut)!r} is not writable (the report")
        assert report_problem(shut / "r.json", append=True) is None  # appending needs no folder
        assert report_problem(shut / "new" / "r.json") == (
            f"the folder {str(shut)!r} is not writable (to create {str(shut / 'new')!r} in)"
        )
    finally:
        shut.chmod(0o755)


# --- a session's reports ------------------------------------------------------------------


@needs_fifo
@with_and_without_workers
def test_reports_follow_symlinks_fill_a_fifo_and_change_nothing_else(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    tmp_path: Path,
    dist: list[str],
) -> None:
    write_experiment(experiments=ONE_PASS, replicates=4)
    project = ourtester.path
    outside = tmp_path / "outside"  # a folder outside the project, where the symlinks lead
    (outside / "shared").mkdir(parents=True)
    real_md = outside / "shared" / "summary.md"
    real_md.write_text("an old summary\n")
    real_md.chmod(0o640)
    (project / "summary.md").symlink_to(real_md)
    (project / "report.html").symlink_to(outside / "new" / "report.html")  # dangling
    os.mkfifo(project / "report.fifo")
    before, before_outside = tree(project), tree(tmp_path)

    with fifo_reader(project / "report.fifo") as received:
        result = ourtester.runpytest(
            "--crystallize",
            "--crystallize-json",
            "report.fifo",
            "--crystallize-md",
            "summary.md",
            "--crystallize-html",
            "report.html",
            *dist,
        )

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    (data,) = received
    document = json.loads(data)
    assert [v["treatment"] for v in document["experiments"][0]["verdicts"]] == ["boost"]
    assert real_md.read_text(encoding="utf-8").startswith("## crystallize: ✅ 1 passed")
    assert (outside / "new" / "report.html").read_text().startswith("<!DOCTYPE html>")
    # the project is as it was: the links are links, the FIFO a FIFO, no temporary file left
    assert tree(project) == before
    # outside, only the links' targets changed: the summary keeps its permission bits
    assert tree(tmp_path) == {
        **before_outside,
        "outside/shared/summary.md": file_entry(real_md, 0o640),
        "outside/new": ("folder", 0o777 & ~_umask()),
        "outside/new/report.html": file_entry(outside / "new" / "report.html", 0o666 & ~_umask()),
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UNWRITABLE = [
    pytest.param(
        ("--crystallize-json", "a_folder"),
        "--crystallize-json 'a_folder': cannot write the JSON report there: it is a folder, "
        f"not a file; {HINT}",
        id="json-folder",
    ),
    pytest.param(
        ("--crystallize-md", "notes.txt/summary.md"),
        "--crystallize-md 'notes.txt/summary.md': cannot write the Markdown summary there: its "
        "folder cannot be created: '*notes.txt' is a file, not a folder; " + HINT,
        id="md-under-a-file",
    ),
    pytest.param(
        ("ini", "crystallize_html = a_folder"),
        "ini crystallize_html 'a_folder': cannot write the HTML report there: it is a folder, "
        f"not a file; {HINT}",
        id="html-ini-folder",
    ),
    pytest.param(
        ("--crystallize-json", "locked.json"),
        "--crystallize-json 'locked.json': cannot write the JSON report there: the file is not "
        f"writable (no write permission); {HINT}",
        id="json-read-only",
        marks=needs_permissions,
    ),
]


@pytest.mark.parametrize(("where", "message"), UNWRITABLE)
@with_and_without_workers
def test_an_unwritable_report_path_is_a_usage_error_before_anything_runs(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    write_ini: Callable[[str], Path],
    where: tuple[str, str],
    message: str,
    dist: list[str],
) -> None:
    write_experiment(experiments=ONE_PASS, replicates=4, step_code="open('ran.txt', 'a').close()")
    (ourtester.path / "a_folder").mkdir()
    (ourtester.path / "notes.txt").write_text("a file\n")
    (ourtester.path / "locked.json").write_text("{}\n")
    (ourtester.path / "locked.json").chmod(0o444)
    args: tuple[str, ...] = where
    if where[0] == "ini":
        write_ini(where[1])
        args = ()
    before = tree(ourtester.path)

    result = ourtester.runpytest("--crystallize", *args, *dist)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert not (ourtester.path / "ran.txt").exists()  # no step ran
    assert "passed" not in result.stdout.str()
    assert tree(ourtester.path) == before


@with_and_without_workers
def test_an_unwritable_github_step_summary_is_one_warning_and_the_session_goes_on(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dist: list[str],
) -> None:
    write_experiment(experiments=ONE_PASS, replicates=4)
    folder = tmp_path / "step_summary"
    folder.mkdir()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(folder))

    result = ourtester.runpytest("--crystallize", "--crystallize-md", "summary.md", *dist)

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2 * chunks(dist, 4) + 1, warnings=1)  # chunks, the verdict
    result.stdout.fnmatch_lines(
        [
            f"*PytestConfigWarning: $GITHUB_STEP_SUMMARY {str(folder)!r}: cannot append the "
            "Markdown summary there: it is a folder, not a file; the session goes on without "
            "the step summary (point GITHUB_STEP_SUMMARY at a writable file, or pass "
            "--crystallize-no-step-summary)"
        ]
    )
    summary = (ourtester.path / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## crystallize: ✅ 1 passed · 1 experiment\n")
    assert list(folder.iterdir()) == []


@with_and_without_workers
def test_a_report_that_cannot_be_written_at_the_end_is_one_line_and_a_failed_session(
    ourtester: pytest.Pytester,
    write_experiment: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dist: list[str],
) -> None:
    write_experiment(experiments=ONE_PASS, replicates=4)
    (ourtester.path / "summary.md").write_text("the last summary\n")
    step_summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    before = tree(ourtester.path)

    def disk_full(handle: object, data: bytes) -> None:  # every write of the writer fails
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic, "_dump", disk_full)  # the controller writes the reports
    result = ourtester.runpytest(
        "--crystallize", "--crystallize-json", "r.json", "--crystallize-md", "summary.md", *dist
    )

    # the session's own output is all there, and the exit code says that it did not succeed
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.assert_outcomes(passed=2 * chunks(dist, 4) + 1)
    full = os.strerror(errno.ENOSPC)
    result.stdout.fnmatch_lines(
        [
            f"crystallize: could not write the JSON report (--crystallize-json) to 'r.json': "
            f"{full}",
            "crystallize: could not write the Markdown summary (--crystallize-md) to "
            f"'summary.md': {full}",
            "crystallize: could not write the GitHub step summary ($GITHUB_STEP_SUMMARY) to "
            f"{str(step_summary)!r}: {full}",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert tree(ourtester.path) == before  # the old summary stays, no temporary file is left
