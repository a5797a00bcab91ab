"""Writing files: atomically (a reader sees the old file or the new one, never half of one),
and to wherever a report path leads (a symlink's target, a device, a FIFO).

:func:`write_atomic` is for the files the package owns (step cache entries, artifacts,
baselines): it replaces whatever is at the path. :func:`write_report` is for paths the user
chose (``--crystallize-json /dev/stdout``, a symlink into a shared folder, a FIFO read by
another program): it writes where the path leads and never turns it into something else.
:func:`report_problem` tells, before anything runs, why :func:`write_report` would fail.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
_SHARED = 0o666 & ~_UMASK  # a new file's usual permissions: reports are meant to be shared
_NO_STREAM = "no such descriptor or stream is open (it is never created)"
_MAX_LINKS = 40  # as the kernel's own limit on symlinks followed in one lookup
_FD = re.compile(r"/(?:proc/(self|\d+)|dev)/fd/(\d+)")  # group 1: None for /dev/fd


def _bytes(parts: tuple[bytes | str, ...]) -> bytes:
    return b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in parts)


def _dump(handle: BinaryIO, data: bytes) -> None:
    """Every write of this module goes through here (one place to see a full disk)."""
    handle.write(data)
    handle.flush()


def write_atomic(path: Path, *parts: bytes | str, mode: int = _SHARED) -> None:
    """Write ``parts`` one after the other through a temporary file in the same folder and
    ``os.replace``, so a reader never sees half a file; the file gets permissions ``mode``
    (by default the usual ones, from the umask), not the temporary file's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            _dump(handle, _bytes(parts))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stat(path: Path) -> os.stat_result | None:
    """What ``path`` leads to, following symlinks; ``None`` if nothing is there (yet)."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _chain(path: Path) -> list[str]:
    """``path`` (absolute) and each symlink on the way to its target, in order."""
    current = os.path.abspath(path)
    hops = [current]
    for _ in range(_MAX_LINKS):
        try:
            link = os.readlink(current)
        except OSError:  # not a link (or not there): the end of the chain
            break
        folder = os.path.realpath(os.path.dirname(current))
        current = os.path.normpath(os.path.join(folder, link))
        hops.append(current)
    return hops


def _in_place(path: Path) -> bool:
    """Whether ``path`` names a descriptor of the process or leads through ``/proc``.

    ``/dev/stdout`` leads, through ``/proc/self/fd/1``, to whatever the process's output is:
    a terminal, a pipe, or a regular file the shell redirected it to. Replacing that file
    would cut the output off from it, so such paths are written in place, never replaced.
    """
    return _descriptor(path) is not None or any(h.startswith("/proc/") for h in _chain(path))


def _descriptor(path: Path) -> int | None:
    """The descriptor of this process that ``path`` names (``/dev/stdout``: 1, ``/dev/fd/3``
    or ``/proc/self/fd/3``: 3), if it names one."""
    for hop in _chain(path):
        found = _FD.fullmatch(hop)
        if found and found[1] in (None, "self", str(os.getpid())):
            return int(found[2])
        if hop in ("/dev/stdout", "/dev/stderr"):
            return 1 if hop == "/dev/stdout" else 2
    return None


def _open_stream(path: Path, *, create: bool) -> BinaryIO:
    """A descriptor the process has (``/dev/stdout``) is written through a copy of it, which
    shares its position: the report follows what the process printed instead of overwriting
    it when the shell redirected the output to a file. Anything else is opened for appending.
    """
    fd = None if create else _descriptor(path)
    if fd is not None:
        for stream in (sys.stdout, sys.stderr):  # what was printed goes first
            with contextlib.suppress(Exception):
                stream.flush()
        return os.fdopen(os.dup(fd), "wb")
    flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT if create else 0)
    return os.fdopen(os.open(path, flags, _SHARED), "wb")


def write_report(path: Path, *parts: bytes | str, append: bool = False) -> None:
    """Write ``parts`` where ``path`` leads, keeping what the path is.

    - A symlink is followed: its target gets the report (and the link stays a link).
    - A regular file (or nothing yet) is replaced atomically through a temporary file next
      to it, keeping the permission bits of the file replaced; with ``append`` (the GitHub
      step summary) the text is added to its end instead. Missing folders are created.
    - A device, a FIFO, a descriptor of the process (``/dev/stdout``, ``/dev/fd/3``) or a
      path through ``/proc`` is written in place: never created, replaced or truncated.

    Raises ``OSError`` (``IsADirectoryError`` for a folder) when the write fails.
    """
    data = _bytes(parts)
    info = _stat(path)
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
    if info is None and _in_place(path):
        raise FileNotFoundError(errno.ENOENT, _NO_STREAM, str(path))
    stream = info is not None and (not stat.S_ISREG(info.st_mode) or _in_place(path))
    if stream or append:
        if not stream:
            Path(os.path.realpath(path)).parent.mkdir(parents=True, exist_ok=True)
        with _open_stream(path, create=not stream) as handle:
            _dump(handle, data)
        return
    target = Path(os.path.realpath(path))  # the file a symlink (chain) leads to
    mode = _SHARED if info is None else stat.S_IMODE(info.st_mode)
    write_atomic(target, data, mode=mode)


def _nearest(folder: Path) -> Path:
    """``folder`` or its nearest ancestor that exists (what creating ``folder`` starts from)."""
    while not os.path.exists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


def _writable_folder(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def report_problem(path: Path, *, append: bool = False) -> str | None:
    """Why :func:`write_report` cannot write ``path`` (``None``: it looks writable), checked
    without writing anything: the answer is a reason such as ``"it is a folder"``."""
    try:
        info = _stat(path)
    except NotADirectoryError:  # a folder on the way is a file: said below
        info = None
    except OSError as exc:  # a symlink loop, a folder that cannot be searched
        return f"it cannot be reached ({exc.strerror or exc})"
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            return "it is a folder, not a file"
        if not os.access(path, os.W_OK):
            return "the file is not writable (no write permission)"
        if append or not stat.S_ISREG(info.st_mode) or _in_place(path):
            return None  # written in place
        folder = Path(os.path.realpath(path)).parent
        if not _writable_folder(folder):
            return (
                f"its folder {str(folder)!r} is not writable (the report replaces the file "
                f"through a temporary file next to it)"
            )
        return None
    if _in_place(path):
        return _NO_STREAM
    folder = Path(os.path.realpath(path)).parent
    start = _nearest(folder)
    if not start.is_dir():
        return f"its folder cannot be created: {str(start)!r} is a file, not a folder"
    if not _writable_folder(start):
        missing = "" if start == folder else f" (to create {str(folder)!r} in)"
        return f"the folder {str(start)!r} is not writable{missing}"
    return None
