"""Locks between processes, on files: one writer at a time, and "in use" marks.

- :func:`exclusive` serialises a read-modify-write (claiming an artifact version, merging a
  baseline file): ``fcntl.flock`` on a lock file, which the kernel releases if the holder dies.
  Where ``fcntl`` is missing (Windows) the lock file itself is the lock: created with
  ``O_EXCL``, removed when done, and one older than ``STALE_SECONDS`` is taken for the
  leftover of a crashed holder.
- :class:`Hold` keeps a shared lock on a file for as long as a session writes next to it, and
  :func:`in_use` asks whether anyone holds one. Without ``fcntl`` nothing is ever in use.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CrystallizeError

try:
    import fcntl
except ImportError:  # Windows: see the module docstring
    fcntl = None  # type: ignore[assignment]

STALE_SECONDS = 120.0
_POLL = 0.01


def flock_available() -> bool:
    """Whether locks are kernel locks (``fcntl.flock``) rather than ``O_EXCL`` lock files."""
    return fcntl is not None


@contextmanager
def exclusive(path: Path, timeout: float = 60.0) -> Iterator[None]:
    """Hold the lock ``path`` (a file, created if needed) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is not None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
        return
    _create_lock_file(path, timeout)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _create_lock_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            try:
                if time.time() - path.stat().st_mtime > STALE_SECONDS:
                    path.unlink(missing_ok=True)  # its holder died without removing it
                    continue
            except FileNotFoundError:
                continue  # released meanwhile
        else:
            os.close(fd)
            return
        if time.monotonic() > deadline:
            msg = (
                f"the lock file {path} was held by another process for more than "
                f"{timeout:.0f} s; if no other pytest-crystallize process is running, "
                f"delete it and try again"
            )
            raise CrystallizeError(msg)
        time.sleep(_POLL)


class Hold:
    """A shared lock on the file ``path``, kept until :meth:`release` (or until the holder
    is garbage collected, or its process ends): :func:`in_use` sees it from any process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDONLY)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)
        self._close = weakref.finalize(self, os.close, fd)

    def release(self) -> None:
        self._close()  # at most once


def in_use(path: Path) -> bool:
    """Whether some process (this one included) holds a :class:`Hold` on ``path``."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
