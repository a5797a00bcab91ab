"""The step cache: content-addressed entries, signed with HMAC-SHA256, written atomically.

An entry holds a cacheable step's output together with what the step recorded while it ran
(metrics, artifacts, context writes, and the digests of context values it read directly), so
a hit replays the step exactly. Layout: ``<root>/<key[:2]>/<key>.entry``, each file
``MAGIC | HMAC-SHA256(payload) | payload`` where the payload is a pickle. An entry whose
signature does not verify is never unpickled; a truncated or corrupt one is a miss that the
next store rewrites. Writes go to a temporary file in the same folder, then ``os.replace``, so
readers never see a torn entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
import random
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_atomic
from .errors import CrystallizeUsageError
from .fingerprint import KeyedHash, digest_value, update_value
from .plugins import BasePlugin

if TYPE_CHECKING:
    from .context import FrozenContext
    from .experiment import Experiment
    from .results import Result

FORMAT_VERSION = 1
_MAGIC = b"CRYSTAL" + bytes([FORMAT_VERSION])
_SIG = 32
KEY_ENV = "CRYSTALLIZE_CACHE_KEY"
DIR_ENV = "CRYSTALLIZE_CACHE_DIR"


def key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "pytest-crystallize" / "cache-signing-key"


_MIN_KEY = 32


def signing_key() -> bytes:
    """``$CRYSTALLIZE_CACHE_KEY``, else a per-user random key kept in a 0600 file.

    The file appears whole or not at all (written aside, then hard-linked into place), so a
    process never signs with a half-written key; a file too short to be a key is replaced.
    """
    configured = os.environ.get(KEY_ENV)
    if configured:
        return configured.encode("utf-8")
    path = key_file()
    try:
        existing: bytes | None = path.read_bytes()
    except FileNotFoundError:
        existing = None
    if existing is not None and len(existing) >= _MIN_KEY:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32).hex().encode())
        if existing is not None:
            os.replace(tmp, path)  # an empty or truncated key file is not a key
        else:
            with contextlib.suppress(FileExistsError):  # another process published first
                os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path.read_bytes()


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A step's output and what it recorded while computing it."""

    output: Any
    metrics: tuple[tuple[str, Any, Any], ...]
    artifacts: tuple[tuple[str, bytes], ...]
    writes: tuple[tuple[str, Any], ...]
    reads: tuple[tuple[str, bytes], ...]
    seconds: float
    random: tuple[Any, Any, Any] = ((), None, None)  # see random_after()


@dataclass
class CacheStats:
    """Counters of one run (or, summed, of a session)."""

    hits: int = 0
    misses: int = 0
    rejected: int = 0
    bytes_written: int = 0
    seconds_saved: float = 0.0

    def add(self, other: CacheStats) -> None:
        self.hits += other.hits
        self.misses += other.misses
        self.rejected += other.rejected
        self.bytes_written += other.bytes_written
        self.seconds_saved += other.seconds_saved

    def as_tuple(self) -> tuple[int, int, int, int, float]:
        return (self.hits, self.misses, self.rejected, self.bytes_written, self.seconds_saved)

    @classmethod
    def from_tuple(cls, values: Any) -> CacheStats:
        hits, misses, rejected, written, saved = values
        return cls(int(hits), int(misses), int(rejected), int(written), float(saved))


@dataclass
class StepCache:
    """The cache of cacheable steps under ``root``; picklable, so workers get a copy."""

    root: Path
    key: bytes | None = field(default=None, repr=False)
    _prefix: bytes = field(default=b"", init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        version = f"{FORMAT_VERSION}|{sys.version_info[:2]}|{sys.implementation.name}"
        self._prefix = version.encode()

    def _secret(self) -> bytes:
        if self.key is None:
            self.key = signing_key()
        return self.key

    def _sign(self, key: str, payload: Any) -> bytes:
        """HMAC-SHA256 of the entry's key and payload: a genuine entry moved to another key
        does not verify there."""
        mac = hmac.new(self._secret(), key.encode(), hashlib.sha256)
        mac.update(payload)
        return mac.digest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.entry"

    # --- keys ---------------------------------------------------------------------------

    def step_key(
        self,
        code: bytes,
        params: Any,
        data: Any,
        seed: tuple[int, int, int] | None,
    ) -> str:
        """The key of a step call: code, resolved parameters, input, and seed (if random)."""
        h = KeyedHash(self._prefix, self._secret())
        h.update(code)
        update_value(h, params)
        update_value(h, data)
        update_value(h, seed)
        return h.hexdigest()

    # --- entries ------------------------------------------------------------------------

    def load(self, key: str, stats: CacheStats) -> CacheEntry | None:
        """The entry under ``key``, or ``None`` (a miss; counted in ``stats``)."""
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except OSError:
            stats.misses += 1
            return None
        header = len(_MAGIC) + _SIG
        if len(blob) < header or not blob.startswith(_MAGIC):
            stats.misses += 1
            return None
        payload = memoryview(blob)[header:]
        expected = self._sign(key, payload)
        if not hmac.compare_digest(expected, blob[len(_MAGIC) : header]):
            stats.misses += 1
            stats.rejected += 1
            return None
        try:
            entry = pickle.loads(payload)
        except Exception:  # signed by us yet unreadable (e.g. a class since renamed)
            stats.misses += 1
            return None
        if not isinstance(entry, CacheEntry):
            stats.misses += 1
            return None
        stats.hits += 1
        stats.seconds_saved += entry.seconds
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used eviction goes by modification time
        return entry

    def store(self, key: str, entry: CacheEntry, stats: CacheStats) -> None:
        """Write ``entry`` atomically; an output that cannot be pickled is simply not cached."""
        try:
            payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return
        try:
            write_atomic(self.path(key), _MAGIC, self._sign(key, payload), payload)
        except OSError:
            return  # a read-only or full disk makes the cache a no-op, never an error
        stats.bytes_written += len(payload) + len(_MAGIC) + _SIG

    # --- maintenance --------------------------------------------------------------------

    def entries(self) -> list[tuple[Path, os.stat_result]]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.glob("*/*.entry"):
            try:
                found.append((path, path.stat()))
            except OSError:
                continue
        return found

    def clear(self) -> int:
        """Delete every entry; return how many there were."""
        removed = 0
        for path, _ in self.entries():
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def evict(self, max_bytes: int) -> int:
        """Delete the least recently used entries until the cache holds ``max_bytes`` at most."""
        entries = sorted(self.entries(), key=lambda item: item[1].st_mtime)
        total = sum(stat.st_size for _, stat in entries)
        removed = 0
        for path, stat in entries:
            if total <= max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= stat.st_size
            removed += 1
        return removed


class CachePlugin(BasePlugin):
    """Where (and whether) a script caches its ``cacheable=True`` steps.

    Without this plugin, scripts cache under ``$CRYSTALLIZE_CACHE_DIR`` or
    ``.crystallize/cache``; under pytest the cache lives in ``.pytest_cache`` and is
    configured with pytest options instead. ``max_mb`` caps the cache's size: after each run
    the least recently used entries are deleted.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str] | None = None,
        enabled: bool = True,
        max_mb: float | None = None,
    ) -> None:
        self.root_dir = Path(root_dir) if root_dir is not None else None
        self.enabled = enabled
        self.max_bytes = check_cache_size(max_mb, "CachePlugin(max_mb=...)")

    def cache(self) -> StepCache | None:
        """The step cache to read and write, or ``None`` when caching is disabled."""
        if not self.enabled:
            return None
        return StepCache(self.root_dir or default_cache_dir())

    def after_run(self, experiment: Experiment, result: Result) -> None:
        if self.enabled and self.max_bytes is not None:
            StepCache(self.root_dir or default_cache_dir()).evict(self.max_bytes)

    def __repr__(self) -> str:
        return f"CachePlugin(root_dir={self.root_dir!r}, enabled={self.enabled!r})"


def _global_states() -> tuple[Any, Any]:
    numpy = sys.modules.get("numpy")
    return random.getstate(), (numpy.random.get_state() if numpy is not None else None)


def _same_numpy_state(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return bool(a[0] == b[0] and a[2:] == b[2:] and (a[1] == b[1]).all())


class RandomWatch:
    """What a cacheable step did to random state, so a hit leaves it exactly as a miss would:
    the context's generators (``ctx.rng``, ``ctx.rng_for``), and the global :mod:`random`
    and numpy generators when the step drew from them."""

    def __init__(self) -> None:
        self.python, self.numpy = _global_states()

    def after(self, ctx: FrozenContext) -> tuple[Any, Any, Any]:
        python, numpy = _global_states()
        generators = tuple(
            (name, generator.bit_generator.state) for name, generator in ctx.streams().items()
        )
        return (
            generators,
            python if python != self.python else None,
            numpy if not _same_numpy_state(numpy, self.numpy) else None,
        )


def restore_random(ctx: FrozenContext, saved: tuple[Any, Any, Any]) -> None:
    generators, python, numpy_state = saved
    for name, state in generators:
        generator = ctx.rng if name is None else ctx.rng_for(name)
        generator.bit_generator.state = state
    if python is not None:
        random.setstate(python)
    if numpy_state is not None:
        sys.modules["numpy"].random.set_state(numpy_state)


def default_cache_dir() -> Path:
    """``$CRYSTALLIZE_CACHE_DIR``, else ``.crystallize/cache`` in the working directory."""
    return Path(os.environ.get(DIR_ENV) or Path(".crystallize") / "cache")


def reads_digest(values: Mapping[str, Any], keys: Any) -> tuple[tuple[str, bytes], ...]:
    return tuple((k, digest_value(values.get(k))) for k in sorted(keys))


def check_cache_size(max_mb: Any, where: str) -> int | None:
    if max_mb is None or max_mb == "":
        return None
    try:
        value = float(max_mb)
    except (TypeError, ValueError):
        value = -1.0
    if value <= 0:
        msg = f"{where} must be a positive number of megabytes, got {max_mb!r}"
        raise CrystallizeUsageError(msg)
    return int(value * 1024 * 1024)
