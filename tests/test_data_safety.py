"""Data safety: paths stay under their root, reading writes nothing, sessions stay apart.

Trees are compared before and after (contents and mtimes): "nothing else changed" is checked.
Files planted outside a project live in the test's own ``tmp_path``, never in a system folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _support import TWO_WORKERS, builder_source, seeded_source, with_and_without_workers

from pytest_crystallize import ArtifactPlugin, Experiment, data_source, pipeline_step
from pytest_crystallize._engine import locks
from pytest_crystallize._engine.errors import CrystallizeError, ExperimentDefinitionError
from pytest_crystallize._store.baselines import load

pytestmark = pytest.mark.usefixtures("private_cache_key")

MARKER = ".crystallize-version"
OUTSIDE_ROOT = (
    "experiment {name!r}: {path} was not made by pytest-crystallize (it has no "
    ".crystallize-version file), so it is neither written to nor emptied; move it out of the "
    "artifact root {root}, or give the experiment another root with ArtifactPlugin(root_dir=...)"
)


def tree(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every path under ``folder`` (but ``__pycache__`` and the ``skip`` prefixes): a
    folder, a link's target, or a file's mtime and digest."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if "__pycache__" in path.parts or name.startswith(skip):
            continue
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            found[name] = "folder"
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            found[name] = f"{path.stat().st_mtime_ns} {digest}"
    return found


# Steps of the experiment files. ``together`` waits until both sessions have started and,
# after its process's first file, until both claimed a version: two sessions overlap
# however the machine schedules them.
STEPS = """
import os, time
from pathlib import Path
from pytest_crystallize import ArtifactPlugin

WROTE = set()


@pipeline_step(cacheable=True)
def run(load, ctx, *, boost=0.0):
    total = load + boost * (1.0 + (ctx.seed // 1000 % 10) / 10.0)
    ctx.artifacts.add("total.txt", repr(total).encode())
    return total, {"total": total}


@pipeline_step()
def plain(load, ctx):
    return load, {"total": load}


@pipeline_step()
def big(load, ctx):
    ctx.artifacts.add("big.bin", b"x" * 4096)
    ctx.artifacts.add("small.txt", b"s")
    return load, {"total": load}


def wait(condition):
    deadline = time.monotonic() + 60
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


@pipeline_step()
def together(load, ctx, *, exp):
    here = Path(os.environ["BARRIER"])
    (here / os.environ["SESSION"]).touch()
    wait(lambda: len(list(here.iterdir())) >= 2)
    if exp in WROTE:
        wait(lambda: len(list(Path("data", exp).glob("v*/.crystallize-version"))) >= 2)
    WROTE.add(exp)
    ctx.artifacts.add("total.txt", repr(load).encode())
    return load, {"total": load}
"""


def lone(name: str, step: str = "run()", calls: str = "", replicates: int = 2) -> str:
    """An experiment without treatments, running ``step``."""
    made = builder_source(
        name, source="workload()", steps=[step], treatments="", replicates=replicates
    )
    return made.replace("    .treatments([])\n", f"    {calls}\n" if calls else "")


def project(*others: str) -> str:
    """``writer`` writes a file per run, ``quiet`` none; then ``others``."""
    writer = builder_source(
        "writer",
        source="workload()",
        steps=["run()"],
        treatments="treatment('boost', {'boost': 5.0})",
        hypotheses="faster",
        replicates=4,
    )
    return seeded_source(STEPS, writer, lone("quiet", "plain()"), *others)


# --- reading is not writing -----------------------------------------------------------------


@with_and_without_workers
def test_sessions_that_only_look_write_nothing(ourtester: pytest.Pytester, dist: list[str]) -> None:
    ourtester.makepyfile(experiment_safety=project())
    # --help and --fixtures start no worker: looked at once, without xdist.
    looks = [["--help"], ["--fixtures"]] if dist != TWO_WORKERS else []
    for looking in (["--collect-only", "--crystallize-save", "x"], *looks):
        ourtester.runpytest("--crystallize", *dist, *looking)
    # On a fresh project: no artifact version, no baseline, no step cache folder.
    for name in ("data", ".crystallize", ".pytest_cache/d/crystallize-steps"):
        assert not (ourtester.path / name).exists(), name
    chunks = 8 + 2 if dist == TWO_WORKERS else 2 + 1  # writer's and quiet's chunks
    ourtester.runpytest("--crystallize", *dist).assert_outcomes(passed=chunks + 1)
    version = ourtester.path / "data" / "writer" / "v0"
    assert len(list(version.rglob("total.txt"))) == 8
    assert (version / MARKER).is_file()
    assert not (ourtester.path / "data" / "quiet").exists()  # it writes no file: no folder
    before = tree(ourtester.path, skip=(".pytest_cache/v",))  # pytest's own node ids, outcomes
    for looking in (["--collect-only"], ["--collect-only"], *looks):
        ourtester.runpytest("--crystallize", *dist, *looking)
        assert tree(ourtester.path, skip=(".pytest_cache/v",)) == before, looking
    pilot = ourtester.runpytest("--crystallize", *dist, "--crystallize-plan", "0.5")
    pilot.assert_outcomes(passed=chunks, skipped=1)
    assert tree(ourtester.path, skip=(".pytest_cache/v",)) == before


# --- every path stays under its root --------------------------------------------------------


@with_and_without_workers
def test_folders_outside_the_root_or_not_made_by_the_plugin_are_never_touched(
    ourtester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dist: list[str]
) -> None:
    absolute = tmp_path / "absolute"  # an absolute root holding someone else's v0
    (absolute / "outside" / "v0").mkdir(parents=True)
    (absolute / "outside" / "v0" / "precious.txt").write_text("keep")
    elsewhere = tmp_path / "elsewhere"  # looks like a version of ours, but outside the root
    (elsewhere / "v0").mkdir(parents=True)
    (elsewhere / "v0" / MARKER).write_text("{}")
    (elsewhere / "v0" / "precious.txt").write_text("keep")
    absolute_root = f".plugins([ArtifactPlugin(root_dir={str(absolute)!r})])"
    ourtester.makepyfile(
        experiment_safety=project(
            lone("outside", calls=absolute_root), lone("linked"), lone("fine")
        )
    )
    (ourtester.path / "data").mkdir()
    (ourtester.path / "data" / "linked").symlink_to(elsewhere, target_is_directory=True)
    (ourtester.path / "sub").mkdir()
    monkeypatch.chdir(ourtester.path / "sub")  # the root is under the rootdir, not here
    before = tree(tmp_path, skip=("xdg",))  # xdg: the private cache key's home
    result = ourtester.runpytest("--crystallize", *dist, str(ourtester.path))
    assert tree(tmp_path, skip=("xdg",)) == before
    data = ourtester.path / "data"
    # Each on its own: under xdist the two experiments' failures come in either order.
    result.stdout.fnmatch_lines(
        ["*" + OUTSIDE_ROOT.format(name="outside", path=absolute / "outside/v0", root=absolute)]
    )
    result.stdout.fnmatch_lines(
        [
            f"*experiment 'linked': {data / 'linked'} resolves to {elsewhere}, which is outside "
            f"the artifact root {data}; artifacts are only written and deleted under their "
            f"root: remove the symbolic link that leads out, or give the experiment another root "
            f"with ArtifactPlugin(root_dir=...)*",
        ]
    )
    assert sorted(p.name for p in (data / "fine" / "v0").rglob("total.txt")) == ["total.txt"] * 2
    assert not (ourtester.path / "sub" / "data").exists()


def test_a_script_refuses_a_v0_it_did_not_make_and_leaves_it_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "writer" / "v0").mkdir(parents=True)
    (tmp_path / "writer" / "v0" / "precious.txt").write_text("keep")
    before = tree(tmp_path)
    with pytest.raises(ExperimentDefinitionError) as info:
        script_experiment("writer", ArtifactPlugin(root_dir=tmp_path)).run()
    expected = OUTSIDE_ROOT.format(name="writer", path=tmp_path / "writer" / "v0", root=tmp_path)
    assert str(info.value) == expected
    assert tree(tmp_path) == before


@data_source
def replicate_number(ctx):  # type: ignore[no-untyped-def]
    return ctx["replicate"]


@pipeline_step()
def write_number(x, ctx):  # type: ignore[no-untyped-def]
    ctx.artifacts.add("n.txt", str(x).encode())
    return x, {"n": x}


def script_experiment(name: str, plugin: ArtifactPlugin) -> Experiment:
    return (
        Experiment.builder(name)
        .datasource(replicate_number())
        .add_step(write_number())
        .plugins([plugin])
        .build()
    )


def test_an_unversioned_run_while_v0_is_in_use_writes_a_spare_that_the_next_run_removes(
    tmp_path: Path,
) -> None:
    exp = script_experiment("shared", ArtifactPlugin(root_dir=tmp_path))
    foreign = tmp_path / "shared" / "v7"  # someone else's: never removed
    foreign.mkdir(parents=True)
    (foreign / "precious.txt").write_text("keep")
    first, second, third = (ArtifactPlugin(root_dir=tmp_path) for _ in range(3))
    first.before_run(exp)  # holds v0, as a session does while it runs
    second.before_run(exp)
    assert first.version_dir == tmp_path / "shared" / "v0"
    assert second.version_dir == foreign.with_name("v8")  # v0 is in use: the next free one
    first.release()
    second.release()
    third.before_run(exp)
    third.release()
    assert third.version_dir == tmp_path / "shared" / "v0"
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["v0", "v7"]
    assert (foreign / "precious.txt").read_text() == "keep"
    versioned = script_experiment(
        "kept", ArtifactPlugin(root_dir=tmp_path, versioned=True, artifact_retention=1)
    )
    (tmp_path / "kept" / "v0").mkdir(parents=True)  # not ours: retention leaves it
    for _ in range(3):
        versioned.run()
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["v0", "v3"]


# --- concurrent sessions stay apart ---------------------------------------------------------


def start_sessions(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sessions: dict[str, list[str]]
) -> None:
    """Start one pytest session per entry (``SESSION`` set to its key) at once; wait for all."""
    barrier = tester.path / "barrier"
    barrier.mkdir()
    monkeypatch.setenv("BARRIER", str(barrier))
    running = []
    for name, args in sessions.items():
        monkeypatch.setenv("SESSION", name)
        command = [sys.executable, "-m", "pytest", "--crystallize", "-p", "no:sugar", *args]
        out, err, no_input = subprocess.PIPE, subprocess.STDOUT, subprocess.DEVNULL
        running.append(tester.popen(command, stdout=out, stderr=err, stdin=no_input))
    for process in running:
        out, _ = process.communicate(timeout=180)
        assert process.returncode == 0, out.decode()
    for path in barrier.iterdir():
        path.unlink()
    barrier.rmdir()


@with_and_without_workers
def test_two_sessions_at_once_write_two_versions(
    ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dist: list[str]
) -> None:
    versioned = ".plugins([ArtifactPlugin(versioned=True)])"
    ourtester.makepyfile(
        experiment_together=seeded_source(
            STEPS,
            lone("plain", "together(exp='plain')", replicates=4),
            lone("versioned", "together(exp='versioned')", versioned, replicates=4),
        )
    )
    start_sessions(ourtester, monkeypatch, {"a": dist, "b": dist})
    for name in ("plain", "versioned"):  # plain: v0 was in use, so the other session took v1
        folder = ourtester.path / "data" / name
        assert sorted(p.name for p in folder.iterdir()) == ["v0", "v1"]
        sessions = {json.loads((folder / v / MARKER).read_text())["session"] for v in ("v0", "v1")}
        assert len(sessions) == 2
        for version in ("v0", "v1"):
            files = sorted(
                p.parent.parent.parent.name for p in (folder / version).rglob("total.txt")
            )
            assert files == [f"replicate_{r}" for r in range(4)]


# Both sessions reach sessionfinish, where the baseline is saved, at the same moment.
MEET_AT_THE_END = """
import os, time
from pathlib import Path

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        here = Path(os.environ["BARRIER"])
        (here / os.environ["SESSION"]).touch()
        deadline = time.monotonic() + 60
        while len(list(here.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
    return (yield)
"""


@with_and_without_workers
def test_two_sessions_saving_one_baseline_at_once_keep_every_record(
    ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dist: list[str]
) -> None:
    source = seeded_source(STEPS, lone("alpha", "plain()"), lone("beta", "plain()"))
    ourtester.makepyfile(experiment_both=source)
    ourtester.makeconftest(MEET_AT_THE_END)
    saved = ourtester.path / ".crystallize" / "baselines" / "main.json"
    args = [*dist, "--crystallize-save", "main", "-k"]
    for _ in range(3 if dist != TWO_WORKERS else 1):  # the controller saves: one trial will do
        start_sessions(ourtester, monkeypatch, {"a": [*args, "alpha"], "b": [*args, "beta"]})
        assert sorted(load(saved)["experiments"]) == [
            "experiment_both.py::alpha",
            "experiment_both.py::beta",
        ]
        saved.unlink()


RETAINED = (
    ".plugins([ArtifactPlugin(versioned=True, artifact_retention=2, big_file_threshold_mb=0.001)])"
)


@with_and_without_workers
def test_artifact_retention_holds_under_pytest(ourtester: pytest.Pytester, dist: list[str]) -> None:
    ourtester.makepyfile(experiment_kept=seeded_source(STEPS, lone("kept", "big()", RETAINED, 1)))
    for _ in range(3):
        ourtester.runpytest("--crystallize", *dist).assert_outcomes(passed=1)
    folder = ourtester.path / "data" / "kept"
    assert sorted(p.name for p in folder.iterdir()) == ["v1", "v2"]
    newest, older = (folder / v / "replicate_0" / "baseline" / "big" for v in ("v2", "v1"))
    assert (newest / "big.bin").stat().st_size == 4096
    assert not (older / "big.bin").exists()  # 4 KB > 0.001 MB, in an older kept version
    assert (older / "small.txt").is_file()


SAVES = 25
SAVER = """
import sys
from pathlib import Path
from pytest_crystallize._store.baselines import save

path, me = Path(sys.argv[1]), sys.argv[2]
for i in range(int(sys.argv[3])):
    save(path, {f"{me}-{i}": {"replicates": i}})
"""


def test_concurrent_saves_of_one_baseline_from_several_processes_keep_every_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".crystallize" / "baselines" / "main.json"
    command = [sys.executable, "-c", SAVER, str(path)]
    savers = [subprocess.Popen([*command, str(me), str(SAVES)]) for me in range(4)]
    assert [saver.wait(timeout=60) for saver in savers] == [0] * 4
    assert sorted(load(path)["experiments"]) == sorted(
        f"{m}-{i}" for m in range(4) for i in range(SAVES)
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["main.json"]  # no temporary files


def test_without_fcntl_a_lock_file_made_with_o_excl_is_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks, "fcntl", None)
    lock = tmp_path / "x.lock"
    with locks.exclusive(lock):
        assert lock.is_file()
        with pytest.raises(CrystallizeError) as info, locks.exclusive(lock, timeout=0.05):
            pass
    assert str(info.value) == (
        f"the lock file {lock} was held by another process for more than 0 s; if no other "
        f"pytest-crystallize process is running, delete it and try again"
    )
    assert not lock.exists()  # released
    lock.touch()
    os.utime(lock, (0, 0))  # left by a holder that died long ago
    with locks.exclusive(lock, timeout=0.05):
        pass
    marker = tmp_path / MARKER
    marker.touch()
    held = locks.Hold(marker)
    assert not locks.in_use(marker)  # nothing to ask without fcntl: nothing is in use
    held.release()
