"""Where artifacts may go: every path stays under its artifact root, and only the version
folders the package made are ever emptied or removed.

A version folder ``<root>/<experiment>/v<N>`` is made with an exclusive ``os.mkdir`` (two
sessions never get the same one) and carries a :data:`VERSION_MARKER` file, created with
``O_EXCL``, naming the session that claimed it. A folder without that marker is someone
else's: it is neither written to, emptied nor removed. Before anything is written or deleted,
the path is resolved (symbolic links followed) and must lie under the resolved root.

The session writing a version holds a shared lock on its marker (:class:`~.locks.Hold`), so
another session never empties or removes it: an unversioned session that finds ``v0`` in use
writes the next free version instead (a *spare*, removed by the next unversioned session that
gets ``v0``). Claims and clean-ups run under the root's :data:`ROOT_LOCK`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .errors import ExperimentDefinitionError
from .locks import in_use

VERSION_MARKER = ".crystallize-version"
ROOT_LOCK = ".crystallize.lock"


def contained(root: Path, path: Path, owner: str) -> Path:
    """``path``, once checked to resolve to a place under ``root`` (also resolved)."""
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and not real.is_relative_to(real_root):
        msg = (
            f"{owner}: {path} resolves to {real}, which is outside the artifact root "
            f"{real_root}; artifacts are only written and deleted under their root: remove "
            f"the symbolic link that leads out, or give the experiment another root with "
            f"ArtifactPlugin(root_dir=...)"
        )
        raise ExperimentDefinitionError(msg)
    return path


def version_numbers(exp_dir: Path) -> list[int]:
    """The numbers of the ``v<N>`` folders in ``exp_dir``, oldest first (anyone's)."""
    if not exp_dir.is_dir():
        return []
    names = (p.name[1:] for p in exp_dir.iterdir() if p.is_dir() and p.name.startswith("v"))
    return sorted(int(v) for v in names if v.isdigit())


def marker(version: Path) -> dict[str, Any] | None:
    """What the marker of ``version`` says, or ``None`` when the package did not make it."""
    path = version / VERSION_MARKER
    if version.is_symlink() or path.is_symlink() or not path.is_file():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}  # cut short while being written: still ours
    return found if isinstance(found, dict) else {}


def _ours(exp_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The versions in ``exp_dir`` that the package made, with their markers, oldest first."""
    found = ((exp_dir / f"v{n}", marker(exp_dir / f"v{n}")) for n in version_numbers(exp_dir))
    return [(v, m) for v, m in found if m is not None]


def session_version(exp_dir: Path, session: str) -> Path | None:
    """The version that ``session`` claimed in ``exp_dir``, if it claimed one."""
    return next((v for v, m in _ours(exp_dir) if m.get("session") == session), None)


def _write_marker(handle: Any, session: str, versioned: bool) -> None:
    json.dump({"session": session, "versioned": versioned}, handle)


def _make(version: Path, session: str, versioned: bool) -> bool:
    """Claim ``version`` by creating it (``False``: it exists already) and its marker."""
    try:
        os.mkdir(version)
    except FileExistsError:
        return False
    fd = os.open(version / VERSION_MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        _write_marker(handle, session, versioned)
    return True


def _require_ours(version: Path, root: Path, owner: str) -> None:
    if marker(version) is None:
        msg = (
            f"{owner}: {version} was not made by pytest-crystallize (it has no "
            f"{VERSION_MARKER} file), so it is neither written to nor emptied; move it out of "
            f"the artifact root {root.resolve()}, or give the experiment another root with "
            f"ArtifactPlugin(root_dir=...)"
        )
        raise ExperimentDefinitionError(msg)


def _retake(version: Path, session: str, versioned: bool, *, keep: bool) -> None:
    """Hand a version of ours to ``session``, emptied unless ``keep``. The marker is
    rewritten in place, so the lock others take on it stays the same lock."""
    if not keep:
        _empty(version)
    with open(version / VERSION_MARKER, "r+", encoding="utf-8") as handle:
        handle.truncate()
        _write_marker(handle, session, versioned)


def _empty(version: Path) -> None:
    """Delete what ``version`` holds but its marker (links are removed, never followed)."""
    for child in version.iterdir():
        if child.name == VERSION_MARKER:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink(missing_ok=True)


def _remove(version: Path) -> None:
    """Delete a version of ours, its marker last: a version half removed stays ours."""
    _empty(version)
    (version / VERSION_MARKER).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something appeared meanwhile: left for its owner
        os.rmdir(version)


def claim(
    root: Path, exp_dir: Path, session: str, *, versioned: bool, resume: bool, owner: str
) -> Path:
    """The version ``session`` writes in ``exp_dir`` (a folder under ``root``), made or taken
    now; run it under the root's lock.

    The version another process of the same session claimed; with ``resume`` the newest one;
    unversioned, ``v0`` emptied (the next free version when another session is writing it);
    versioned, the next free version.
    """
    mine = session_version(exp_dir, session)
    if mine is not None:
        return mine
    reused = refuse_foreign(root, exp_dir, versioned=versioned, resume=resume, owner=owner)
    if resume and reused is not None:
        _retake(reused, session, versioned, keep=True)
        return reused
    numbers = version_numbers(exp_dir)
    if not versioned:
        first = exp_dir / "v0"
        if _make(first, session, versioned=False):
            _drop_spares(exp_dir)
            return first
        _require_ours(first, root, owner)
        if not in_use(first / VERSION_MARKER):
            _retake(first, session, versioned=False, keep=False)
            _drop_spares(exp_dir)
            return first
    number = numbers[-1] + 1 if numbers else 0
    while not _make(exp_dir / f"v{number}", session, versioned):
        number += 1
    return exp_dir / f"v{number}"


def refuse_foreign(
    root: Path, exp_dir: Path, *, versioned: bool, resume: bool, owner: str, locked: bool = True
) -> Path | None:
    """The existing version a claim would write into (``v0`` unversioned, the newest with
    ``resume``), once checked to be under ``root`` and of the package's making; raises
    otherwise. Called before the root's lock is taken (``locked=False``), so that nothing is
    created for a claim bound to fail, an empty folder passes: another session may be
    between creating it and its marker."""
    numbers = version_numbers(exp_dir)
    if resume and numbers:
        found = exp_dir / f"v{numbers[-1]}"
    elif not versioned and not resume:
        found = exp_dir / "v0"
    else:
        return None
    if not found.exists() and not found.is_symlink():
        return None
    contained(root, found, owner)
    if locked or not found.is_dir() or marker(found) is not None or any(found.iterdir()):
        _require_ours(found, root, owner)
    return found


def _drop_spares(exp_dir: Path) -> None:
    """Remove the spare versions unversioned sessions wrote while ``v0`` was in use."""
    for version, found in _ours(exp_dir)[1:]:
        if found.get("versioned") is False and not in_use(version / VERSION_MARKER):
            _remove(version)


def retain(exp_dir: Path, keep: int, big_bytes: float) -> None:
    """Keep the newest ``keep`` versions of ours (all when ``keep <= 0``), the older kept ones
    without their files above ``big_bytes``; a version in use is left as it is. Run it
    under the root's lock."""
    if keep <= 0:
        return
    ours = [v for v, _ in _ours(exp_dir)]
    for version in ours[:-keep]:
        if not in_use(version / VERSION_MARKER):
            _remove(version)
    for version in ours[-keep:-1]:
        if in_use(version / VERSION_MARKER):
            continue
        for path in version.rglob("*"):
            regular = path.is_file() and not path.is_symlink() and path.name != VERSION_MARKER
            if regular and path.stat().st_size > big_bytes:
                path.unlink()
