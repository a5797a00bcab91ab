"""The step cache: content-addressed entries, signed with HMAC-SHA256, written atomically.

An entry holds a cacheable step's output together with what the step recorded while it ran
(metrics, artifacts, context writes, and the digests of context values it read directly), so
a hit replays the step exactly. Layout: ``<root>/<key[:2]>/<key>.entry``, each file
``MAGIC | HMAC-SHA256(payload) | payload`` where the payload is a pickle. An entry whose
signature does not verify is never unpickled; a truncated or corrupt one is a miss that the
next store rewrites. Writes go to a temporary file in the same folder, then ``os.replace``, so
readers never see a torn entry. The signing key and when it is trusted: :mod:`.signing`; a
cache whose key is not trusted, or whose folder cannot be written, runs uncached (one
warning), and never fails a step.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_atomic
from .errors import CrystallizeUsageError
from .fingerprint import KeyedHash, digest_value, update_value
from .plugins import BasePlugin
from .signing import KEY_ENV as KEY_ENV
from .signing import UnusableKeyError, warn_once
from .signing import key_file as key_file
from .signing import signing_key as signing_key

if TYPE_CHECKING:
    from .context import FrozenContext
    from .experiment import Experiment
    from .results import Result

FORMAT_VERSION = 1
_MAGIC = b"CRYSTAL" + bytes([FORMAT_VERSION])
_SIG = 32
DIR_ENV = "CRYSTALLIZE_CACHE_DIR"
# When this process started using the cache: temporary files older than this were left by
# writers that died (a finished write renames its file at once), so clear() and evict()
# remove them unless told the session's own start.
_STARTED = time.time()


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
    """The cache of cacheable steps under ``root``; picklable, so workers get a copy.

    Without a ``key``, the signing key is :func:`~.signing.signing_key`'s; when that key
    cannot be trusted or created, the cache is off in this process (one warning): every
    step is a miss, no entry is read (so none is unpickled) and none is written.
    """

    root: Path
    key: bytes | None = field(default=None, repr=False)
    _prefix: bytes = field(default=b"", init=False, repr=False)
    _off: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        version = f"{FORMAT_VERSION}|{sys.version_info[:2]}|{sys.implementation.name}"
        self._prefix = version.encode()

    def _secret(self) -> bytes:
        if self.key is None:
            try:
                self.key = signing_key()  # a key too short raises: a usage error
            except UnusableKeyError as exc:
                warn_once(str(exc))
                self._off = True
                self.key = os.urandom(32)  # step keys are still computed, never looked up
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
        extra: Callable[[Any], None] | None = None,
    ) -> str:
        """The key of a step call: code, resolved parameters, input, and seed (if random).

        ``extra(h)`` feeds the rest of what the step reads into the key's hash ``h``: the
        module-level data its code reads, the files it declares (large buffers go through
        ``h``'s fast buffer hash).
        """
        h = KeyedHash(self._prefix, self._secret())
        h.update(code)
        update_value(h, params)
        update_value(h, data)
        update_value(h, seed)
        if extra is not None:
            extra(h)
        return h.hexdigest()

    # --- entries ------------------------------------------------------------------------

    def load(self, key: str, stats: CacheStats) -> CacheEntry | None:
        """The entry under ``key``, or ``None`` (a miss; counted in ``stats``)."""
        self._secret()
        if self._off:  # an untrusted key: nothing signed with it may be unpickled
            stats.misses += 1
            return None
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
        """Write ``entry`` atomically; an output that cannot be pickled is simply not cached,
        and a folder that cannot be written (read-only, full disk) makes this a no-op with a
        warning, once per process: the cache never fails a step."""
        self._secret()
        if self._off:
            return
        try:
            payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return
        try:
            write_atomic(self.path(key), _MAGIC, self._sign(key, payload), payload)
        except OSError as exc:
            with contextlib.suppress(Warning):  # under -W error: still not a failed step
                warn_once(f"{self._unwritable(exc)}; entries are not stored")
            return
        stats.bytes_written += len(payload) + len(_MAGIC) + _SIG

    def _unwritable(self, exc: OSError) -> str:
        return f"the step cache {self.root} cannot be written ({exc.strerror or exc})"

    def check_writable(self) -> str | None:
        """Why entries cannot be written under ``root`` (``None``: they can). A small file
        goes through the entries' own write path and is removed, so a read-only folder or a
        full disk shows before any step runs."""
        probe = self.root / f".write-check-{os.getpid()}.tmp"
        try:
            write_atomic(probe, _MAGIC * 64)
            probe.unlink()
        except OSError as exc:
            with contextlib.suppress(OSError):
                probe.unlink()
            return f"{self._unwritable(exc)}, so steps run uncached"
        return None

    # --- maintenance --------------------------------------------------------------------

    def entries(self) -> list[tuple[Path, os.stat_result]]:
        """Every entry file with its ``stat``."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.glob("*/*.entry"):
            try:
                found.append((path, path.stat()))
            except OSError:
                continue
        return found

    def _remove_leftovers(self, older_than: float | None) -> None:
        """Delete the temporary files that writers killed mid-write left, those older than
        ``older_than`` (by default, when this process started): a write in progress is
        newer, and its file renamed away once written."""
        cutoff = _STARTED if older_than is None else older_than
        if not self.root.is_dir():
            return
        for pattern in (".*.tmp", "*/.*.tmp"):
            for path in self.root.glob(pattern):
                with contextlib.suppress(OSError):
                    if path.lstat().st_mtime < cutoff:
                        path.unlink()

    def clear(self, older_than: float | None = None) -> int:
        """Delete every entry, and leftovers older than ``older_than``; return how many
        entries there were. A file that cannot be deleted is left (the caller finds the
        folder unwritable)."""
        self._remove_leftovers(older_than)
        removed = 0
        for path, _ in self.entries():
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            removed += 1
        return removed

    def evict(self, max_bytes: int, older_than: float | None = None) -> int:
        """Delete leftovers older than ``older_than``, then the least recently used entries
        until the cache holds ``max_bytes`` at most; return how many entries were deleted."""
        self._remove_leftovers(older_than)
        entries = sorted(self.entries(), key=lambda item: item[1].st_mtime)
        total = sum(stat.st_size for _, stat in entries)
        removed = 0
        for path, stat in entries:
            if total <= max_bytes:
                break
            try:
                path.unlink(missing_ok=True)
            except OSError:
                continue
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
    """``(key, digest of its value)`` for each key, sorted; a key the context lacks gets a
    marker no value's digest equals (a step may branch on ``"key" in ctx``)."""
    return tuple(
        (k, digest_value(values[k]) if k in values else b"absent") for k in sorted(set(keys))
    )


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
