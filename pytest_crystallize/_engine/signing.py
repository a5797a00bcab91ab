"""The step cache's signing key: where it comes from, and when it is trusted.

The key is ``$CRYSTALLIZE_CACHE_KEY`` (in CI, a secret shared by the runners that share a
cache), else a per-user random key kept in :func:`key_file`, created 0600 on first use. It is
guarded like an ssh key, because whoever knows it can forge cache entries, and an entry is a
pickle (unpickling it runs code):

- a key file that group or others can read or write, or that another user owns, is not
  trusted: :class:`UnusableKeyError` says so and how to fix it, and the cache is not used;
- a key shorter than :data:`MIN_KEY_BYTES` is refused (:class:`CrystallizeUsageError`);
- a key file that cannot be created or read makes the cache unusable, never a failed step.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import warnings
from pathlib import Path

from .errors import CrystallizeError, CrystallizeUsageError

KEY_ENV = "CRYSTALLIZE_CACHE_KEY"
MIN_KEY_BYTES = 16
_NEW_KEY_BYTES = 32  # random bytes of a key made here, stored as 64 hex characters
_EXAMPLE = "the output of python -c 'import secrets; print(secrets.token_hex(32))'"


class UnusableKeyError(CrystallizeError):
    """The signing key cannot be trusted or created: the step cache is not used (the
    message names the file, why, and the fix)."""


class CacheWarning(UserWarning):
    """The step cache is not used, or cannot store entries, in this process."""


_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """Warn about the step cache once per process for each distinct message."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(CacheWarning(message), stacklevel=3)


def key_file() -> Path:
    """The per-user key file: ``$XDG_CONFIG_HOME`` (else ``~/.config``)
    ``/pytest-crystallize/cache-signing-key``."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "pytest-crystallize" / "cache-signing-key"


def signing_key() -> bytes:
    """``$CRYSTALLIZE_CACHE_KEY``, else the per-user key file, created on first use.

    The file appears whole or not at all (written aside, then hard-linked into place), so a
    process never signs with a half-written key; an empty file is replaced. Raises
    :class:`CrystallizeUsageError` for a key shorter than 16 bytes and
    :class:`UnusableKeyError` for a key file that is not trusted or cannot be created.
    """
    configured = _configured()
    if configured is not None:
        return configured
    path = key_file()
    existing = _read_trusted(path)
    if not existing:
        try:
            _create(path, replace=existing is not None)
        except OSError as exc:
            raise UnusableKeyError(_uncreatable(path, exc.strerror or str(exc))) from None
        existing = _read_trusted(path) or b""
    _check_file(existing, path)
    return existing


def check_signing_key() -> None:
    """Raise what :func:`signing_key` would, without creating the key file: a session checks
    its key before it knows whether any step is cacheable, and leaves no file behind."""
    if _configured() is not None:
        return
    path = key_file()
    existing = _read_trusted(path)
    if existing:
        _check_file(existing, path)
        return
    folder = path.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent  # the folder the key's folders would be created in
    if not folder.is_dir():
        raise UnusableKeyError(_uncreatable(path, f"{folder} is not a folder"))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UnusableKeyError(_uncreatable(path, f"{folder} is not writable"))


def _configured() -> bytes | None:
    configured = os.environ.get(KEY_ENV)
    if not configured:
        return None
    key = configured.encode("utf-8")
    _check_length(key, f"${KEY_ENV}", f"set it to a longer random secret, such as {_EXAMPLE}")
    return key


def _check_file(key: bytes, path: Path) -> None:
    fix = f"put a longer random secret in it, such as {_EXAMPLE}, or remove it to get a new key"
    _check_length(key, f"the cache signing key file {path}", fix)


def _uncreatable(path: Path, why: str) -> str:
    return (
        f"the cache signing key file {path} cannot be created ({why}), so steps run "
        f"uncached. Fix: make {path.parent} writable, or set ${KEY_ENV} to a secret of at "
        f"least {MIN_KEY_BYTES} bytes"
    )


def _check_length(key: bytes, where: str, fix: str) -> None:
    """Refuse a key shorter than :data:`MIN_KEY_BYTES`, naming where it came from and its
    length, never the key."""
    if len(key) < MIN_KEY_BYTES:
        msg = (
            f"{where} holds a {len(key)}-byte cache signing key; a key needs at least "
            f"{MIN_KEY_BYTES} bytes: {fix}"
        )
        raise CrystallizeUsageError(msg)


def _read_trusted(path: Path) -> bytes | None:
    """The bytes of the key file (``None``: there is none), checked on the open file itself,
    so the file judged is the file read."""
    try:
        with open(path, "rb") as handle:
            problem = _distrust(path, os.fstat(handle.fileno()))
            if problem is None:
                return handle.read()
    except (FileNotFoundError, NotADirectoryError):  # no key yet (creating it may fail)
        return None
    except OSError as exc:  # a folder in its place, no permission to read it...
        msg = (
            f"the cache signing key file {path} cannot be read ({exc.strerror or exc}), so "
            f"steps run uncached. Fix: chmod 600 {path}, or remove what is in its place"
        )
        raise UnusableKeyError(msg) from None
    raise UnusableKeyError(problem)


def _distrust(path: Path, info: os.stat_result) -> str | None:
    """Why a key file must not be trusted (``None``: it may be), as ssh judges a private key:
    it must belong to this user and be neither readable nor writable by anyone else."""
    if os.name != "posix":  # no POSIX owner and mode to judge
        return None
    reasons = []
    me = os.geteuid()
    if info.st_uid != me:
        reasons.append(f"belongs to another user (uid {info.st_uid}; you are uid {me})")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        reasons.append(f"can be read or written by group or others (mode {mode:04o})")
    if not reasons:
        return None
    fix = (
        f"chmod 600 {path}"
        if info.st_uid == me
        else f"remove it (a new key is created on the next run), or set ${KEY_ENV}"
    )
    return (
        f"the cache signing key file {path} {' and '.join(reasons)}: whoever can read the key "
        f"can forge cache entries, which are unpickled (that runs code), so the step cache is "
        f"not used. Fix: {fix}"
    )


def _create(path: Path, *, replace: bool) -> None:
    """Publish a new random key at ``path`` (0600, in a 0700 folder), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(_NEW_KEY_BYTES).hex().encode())
        if replace:
            os.replace(tmp, path)  # an empty key file is not a key
        else:
            with contextlib.suppress(FileExistsError):  # another process published first
                os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
