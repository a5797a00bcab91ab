"""Stable digests of values, and fast digests of large buffers, for cache keys.

Digests never depend on ``PYTHONHASHSEED``, the process or the machine's pickle quirks for
the common types: sets and dicts are hashed in the order of their elements' digests, numpy
arrays by their dtype, shape and raw buffer (no pickling, so hashing runs near memory
bandwidth). Code fingerprints are in :mod:`.codeprint`, module state in :mod:`.state`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import pickle
import struct
import sys
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

MAX_DEPTH = 64


def tag(h: Any, kind: bytes, payload: bytes = b"") -> None:
    """Feed ``kind`` and a length-prefixed ``payload`` into ``h``: no two sequences of tags
    feed the same bytes."""
    h.update(kind)
    h.update(struct.pack("<Q", len(payload)))
    h.update(payload)


def update_value(h: Any, value: Any, depth: int = 0) -> None:
    """Feed a canonical encoding of ``value`` into the hash object ``h``."""
    if depth > MAX_DEPTH:
        update_pickled(h, value)  # a pickle is complete at any depth
        return
    kind = type(value)
    if value is None or kind is bool:
        tag(h, b"atom", repr(value).encode())
    elif kind is int:
        tag(h, b"int", str(value).encode())
    elif kind is float or kind is complex:
        tag(h, b"num", repr(value).encode())
    elif kind is str:
        tag(h, b"str", value.encode("utf-8", "surrogatepass"))
    elif kind is bytes or kind is bytearray:
        tag(h, b"bytes", bytes(value) if kind is bytearray else value)
    elif kind is memoryview:
        tag(h, b"memoryview", repr((value.format, value.shape)).encode())
        h.update(value.cast("B") if value.c_contiguous else value.tobytes())
    elif kind.__name__ == "ndarray" and kind.__module__ == "numpy":
        update_array(h, value, depth)
    elif kind is list or kind is tuple:
        tag(h, b"list" if kind is list else b"tuple", str(len(value)).encode())
        for item in value:
            update_value(h, item, depth + 1)
    elif isinstance(value, Mapping):
        pairs = sorted((digest_value(k), v) for k, v in value.items())
        tag(h, b"map", str(len(pairs)).encode())
        for key_digest, item in pairs:
            h.update(key_digest)
            update_value(h, item, depth + 1)
    elif isinstance(value, set | frozenset):
        tag(h, b"set", b"".join(sorted(digest_value(v) for v in value)))
    elif isinstance(value, enum.Enum):
        tag(h, b"enum", f"{kind.__module__}.{kind.__qualname__}.{value.name}".encode())
    elif isinstance(value, PurePath):
        tag(h, b"path", str(value).encode())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        tag(h, b"dataclass", f"{kind.__module__}.{kind.__qualname__}".encode())
        for f in dataclasses.fields(value):
            tag(h, b"field", f.name.encode())
            update_value(h, getattr(value, f.name), depth + 1)
    elif kind.__module__ == "numpy" and hasattr(value, "dtype") and hasattr(value, "tobytes"):
        tag(h, b"npscalar", value.dtype.str.encode())  # numpy scalar
        h.update(value.tobytes())
    elif callable(getattr(value, "__crystallize_digest__", None)):
        tag(h, b"custom", f"{kind.__module__}.{kind.__qualname__}".encode())
        update_value(h, value.__crystallize_digest__(), depth + 1)
    elif isinstance(value, bool | int | float | str | bytes):  # subclasses
        tag(h, b"sub", f"{kind.__module__}.{kind.__qualname__}".encode())
        update_value(h, kind.__mro__[-2](value), depth + 1)
    else:
        update_pickled(h, value)


_SPLIT = 4 * 1024 * 1024
_FAST_MIN = 1024 * 1024
_POOL: list[Any] = []
_BLOCK = 4096  # 64-bit words per block of the keyed multilinear hash


class KeyedHash:
    """SHA-256 that digests large buffers with a keyed multilinear hash first.

    Each block of 4,096 64-bit words is reduced to two dot products (mod 2**64) with secret
    odd weights derived from the cache's signing key, and the ordered results are fed to
    SHA-256: memory bandwidth instead of SHA-256's 2 GB/s. For any two different blocks, the
    chance that both products collide is at most about 2**-128 over the secret weights, and
    without the key the weights cannot be learned from the cache, so inputs cannot be crafted
    to collide. Only the step cache uses it: keys there need not agree across signing keys.
    """

    def __init__(self, prefix: bytes, secret: bytes) -> None:
        self._h = hashlib.sha256(prefix)
        self._secret = secret
        self._weights: Any = None

    def update(self, data: Any) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def fast_buffer(self, data: memoryview) -> bytes:
        numpy = sys.modules.get("numpy")
        if numpy is None:  # no array in sight: plain SHA-256 costs nothing to import
            return hashlib.sha256(data).digest()
        if self._weights is None:
            self._weights = _weights(self._secret)
        words = data.nbytes // (8 * _BLOCK) * _BLOCK
        blocks = numpy.frombuffer(data, dtype=numpy.uint64, count=words).reshape(-1, _BLOCK)
        products = blocks @ self._weights
        tail = data[words * 8 :]
        return hashlib.sha256(products.tobytes() + bytes(tail)).digest()


_WEIGHTS: dict[bytes, Any] = {}


def _weights(secret: bytes) -> Any:
    weights = _WEIGHTS.get(secret)
    if weights is None:
        import numpy as np  # lazy: numpy is imported only for data that is numpy's already

        seed = hmac.new(secret, b"crystallize-multilinear-weights", hashlib.sha256).digest()
        rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "big")))
        weights = rng.integers(0, 2**64, size=(_BLOCK, 2), dtype=np.uint64, endpoint=False)
        weights |= np.uint64(1)
        _WEIGHTS[secret] = weights
    return weights


def update_buffer(h: Any, data: memoryview) -> None:
    """Feed a buffer into ``h``.

    A hash object with a ``fast_buffer`` method (the step cache's keyed hash) digests large
    buffers with it; otherwise a large buffer is hashed in two halves on two threads
    (hashlib releases the GIL), and their digests fed in: twice the speed on two cores.
    """
    fast = getattr(h, "fast_buffer", None)
    if fast is not None and data.nbytes >= _FAST_MIN:
        tag(h, b"keyed", fast(data))
        return
    if data.nbytes < _SPLIT:
        h.update(data)
        return
    if not _POOL:
        # lazy: only these executors need it; a serial run never pays
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(2, thread_name_prefix="crystallize-hash"))
    half = data.nbytes // 2
    parts = _POOL[0].map(lambda part: hashlib.sha256(part).digest(), (data[:half], data[half:]))
    tag(h, b"tree", b"".join(parts))


def update_array(h: Any, array: Any, depth: int) -> None:
    """Feed a numpy array: its dtype, shape and buffer (object arrays: their elements)."""
    if array.dtype.hasobject:
        tag(h, b"objarray", repr((array.dtype.str, array.shape)).encode())
        update_value(h, array.tolist(), depth + 1)
        return
    tag(h, b"ndarray", repr((array.dtype.str, array.shape)).encode())
    if not array.flags.c_contiguous:
        import numpy as np  # lazy: numpy is imported only for data that is numpy's already

        array = np.ascontiguousarray(array)
    update_buffer(h, memoryview(array).cast("B") if array.size else memoryview(b""))


def update_pickled(h: Any, value: Any) -> None:
    """Anything else: its pickle, with large buffers (pickle protocol 5) hashed in place."""
    kind = type(value)
    tag(h, b"pickle", f"{kind.__module__}.{kind.__qualname__}".encode())
    buffers: list[pickle.PickleBuffer] = []
    try:
        data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:
        msg = (
            f"cannot compute a cache key for a {kind.__qualname__} value: pickling it failed "
            f"({type(exc).__name__}: {exc}); make the step's input and parameters picklable "
            f"or drop cacheable=True"
        )
        raise TypeError(msg) from exc
    h.update(data)
    for buffer in buffers:
        h.update(buffer.raw())


def digest_value(value: Any) -> bytes:
    """The SHA-256 digest of ``value``'s canonical encoding (see :func:`update_value`)."""
    h = hashlib.sha256()
    update_value(h, value)
    return h.digest()
