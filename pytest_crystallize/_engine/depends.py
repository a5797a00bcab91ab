"""Files a cacheable step declares it reads: ``@pipeline_step(depends_on=[...])``.

Patterns are paths or globs (``**`` included) relative to the folder of the file that
defines the step, so they name the same files in a script, under pytest (whatever its
rootdir) and on every xdist worker, whatever the working directory. Each pattern must name
at least one file: a missing file is an error naming the step, the pattern and the folder.
The files' contents, in sorted order, are part of the step's cache key.
"""

from __future__ import annotations

import glob
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .digests import tag, update_buffer
from .errors import CrystallizeUsageError, ExperimentDefinitionError

_CHUNK = 16 * 1024 * 1024


def check_depends_on(value: Any, step: str) -> tuple[str, ...]:
    """``depends_on`` as a tuple of patterns; anything but a str or a list of str raises."""
    if value is None:
        return ()
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list | tuple) or not all(isinstance(p, str) for p in patterns):
        msg = (
            f"@pipeline_step(depends_on=...) of step {step!r} takes a path or glob pattern "
            f"(str) or a list of them, got {value!r} ({type(value).__name__}); write "
            f'depends_on="params.json" or depends_on=["params.json", "data/*.csv"]'
        )
        raise CrystallizeUsageError(msg)
    for pattern in patterns:
        if not pattern.strip():
            msg = (
                f"@pipeline_step(depends_on=...) of step {step!r} has an empty pattern in "
                f"{value!r}; name a file or a glob such as 'data/*.csv'"
            )
            raise CrystallizeUsageError(msg)
    return tuple(patterns)


def folder_of(fn: Callable[..., Any]) -> Path:
    """The folder of the file that defines ``fn`` (the working directory for code typed
    in an interpreter, which has no file)."""
    try:
        path = inspect.getsourcefile(fn) or inspect.getfile(fn)
    except TypeError:
        path = None
    if path is None or path.startswith("<"):
        return Path.cwd()
    return Path(path).resolve().parent


def dependency_files(step: str, patterns: tuple[str, ...], folder: Path) -> list[Path]:
    """The files ``patterns`` name under ``folder``, sorted, each once; a pattern naming no
    file raises :class:`ExperimentDefinitionError`."""
    found: set[Path] = set()
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            matched = [folder / m for m in glob.glob(pattern, root_dir=folder, recursive=True)]
            matched = [path for path in matched if path.is_file()]
            what = "matches no file"
        else:
            matched = [folder / pattern] if (folder / pattern).is_file() else []
            what = "is a folder" if (folder / pattern).is_dir() else "does not exist"
        if not matched:
            msg = (
                f"step {step!r}: depends_on pattern {pattern!r} {what} in {folder} (patterns "
                f"are relative to the folder of the file that defines the step); create the "
                f"file, fix the pattern (a glob such as 'data/*.csv' names the files of a "
                f"folder), or remove it from depends_on"
            )
            raise ExperimentDefinitionError(msg)
        found.update(matched)
    return sorted(found)


def update_files(h: Any, files: list[Path], folder: Path) -> None:
    """Feed each file's name (relative to ``folder`` where it is inside) and contents."""
    for path in files:
        shown = path.relative_to(folder) if path.is_relative_to(folder) else path
        tag(h, b"file", shown.as_posix().encode())
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                tag(h, b"chunk", str(len(chunk)).encode())
                update_buffer(h, memoryview(chunk))
        tag(h, b"end")
