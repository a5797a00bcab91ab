"""Stable digests of values and of code, for cache keys.

Digests never depend on ``PYTHONHASHSEED``, the process or the machine's pickle quirks for
the common types: sets and dicts are hashed in the order of their elements' digests, numpy
arrays by their dtype, shape and raw buffer (no pickling, so hashing runs near memory
bandwidth). Code is fingerprinted by its bytecode, constants and names, following the user's
own functions and module-level constants it references, so editing a helper a step calls
changes the step's key.
"""

from __future__ import annotations

import dataclasses
import dis
import enum
import hashlib
import hmac
import pickle
import struct
import sys
import sysconfig
import types
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from .inputs import artifacts_read
from .plugins import SeedPlugin

if TYPE_CHECKING:
    from .experiment import Experiment

_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)
_OWN_DIR = str(PurePath(__file__).parent.parent)  # the whole package, not only the engine
_MAX_DEPTH = 64


def _tag(h: Any, tag: bytes, payload: bytes = b"") -> None:
    h.update(tag)
    h.update(struct.pack("<Q", len(payload)))
    h.update(payload)


def update_value(h: Any, value: Any, depth: int = 0) -> None:
    """Feed a canonical encoding of ``value`` into the hash object ``h``."""
    if depth > _MAX_DEPTH:
        _update_pickled(h, value)  # a pickle is complete at any depth
        return
    kind = type(value)
    if value is None or kind is bool:
        _tag(h, b"atom", repr(value).encode())
    elif kind is int:
        _tag(h, b"int", str(value).encode())
    elif kind is float or kind is complex:
        _tag(h, b"num", repr(value).encode())
    elif kind is str:
        _tag(h, b"str", value.encode("utf-8", "surrogatepass"))
    elif kind is bytes or kind is bytearray:
        _tag(h, b"bytes", bytes(value) if kind is bytearray else value)
    elif kind is memoryview:
        _tag(h, b"memoryview", repr((value.format, value.shape)).encode())
        h.update(value.cast("B") if value.c_contiguous else value.tobytes())
    elif kind.__name__ == "ndarray" and kind.__module__ == "numpy":
        _update_array(h, value, depth)
    elif kind is list or kind is tuple:
        _tag(h, b"list" if kind is list else b"tuple", str(len(value)).encode())
        for item in value:
            update_value(h, item, depth + 1)
    elif isinstance(value, Mapping):
        pairs = sorted((digest_value(k), v) for k, v in value.items())
        _tag(h, b"map", str(len(pairs)).encode())
        for key_digest, item in pairs:
            h.update(key_digest)
            update_value(h, item, depth + 1)
    elif isinstance(value, set | frozenset):
        _tag(h, b"set", b"".join(sorted(digest_value(v) for v in value)))
    elif isinstance(value, enum.Enum):
        _tag(h, b"enum", f"{kind.__module__}.{kind.__qualname__}.{value.name}".encode())
    elif isinstance(value, PurePath):
        _tag(h, b"path", str(value).encode())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _tag(h, b"dataclass", f"{kind.__module__}.{kind.__qualname__}".encode())
        for f in dataclasses.fields(value):
            _tag(h, b"field", f.name.encode())
            update_value(h, getattr(value, f.name), depth + 1)
    elif kind.__module__ == "numpy" and hasattr(value, "dtype") and hasattr(value, "tobytes"):
        _tag(h, b"npscalar", value.dtype.str.encode())  # numpy scalar
        h.update(value.tobytes())
    elif callable(getattr(value, "__crystallize_digest__", None)):
        _tag(h, b"custom", f"{kind.__module__}.{kind.__qualname__}".encode())
        update_value(h, value.__crystallize_digest__(), depth + 1)
    elif isinstance(value, bool | int | float | str | bytes):  # subclasses
        _tag(h, b"sub", f"{kind.__module__}.{kind.__qualname__}".encode())
        update_value(h, kind.__mro__[-2](value), depth + 1)
    else:
        _update_pickled(h, value)


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
        _tag(h, b"keyed", fast(data))
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
    _tag(h, b"tree", b"".join(parts))


def _update_array(h: Any, array: Any, depth: int) -> None:
    if array.dtype.hasobject:
        _tag(h, b"objarray", repr((array.dtype.str, array.shape)).encode())
        update_value(h, array.tolist(), depth + 1)
        return
    _tag(h, b"ndarray", repr((array.dtype.str, array.shape)).encode())
    if not array.flags.c_contiguous:
        import numpy as np  # lazy: numpy is imported only for data that is numpy's already

        array = np.ascontiguousarray(array)
    update_buffer(h, memoryview(array).cast("B") if array.size else memoryview(b""))


def _update_pickled(h: Any, value: Any) -> None:
    """Anything else: its pickle, with large buffers (pickle protocol 5) hashed in place."""
    kind = type(value)
    _tag(h, b"pickle", f"{kind.__module__}.{kind.__qualname__}".encode())
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
    h = hashlib.sha256()
    update_value(h, value)
    return h.digest()


# --- code ---------------------------------------------------------------------------------


def _is_user_code(module_name: str | None) -> bool:
    module = sys.modules.get(module_name or "")
    path = getattr(module, "__file__", None)
    if path is None:
        return module_name == "__main__"
    return not path.startswith(_LIBRARY_DIRS) and not path.startswith(_OWN_DIR)


def _update_code(h: Any, code: types.CodeType, names: set[str]) -> None:
    _tag(h, b"code", code.co_code)
    _tag(h, b"names", "\0".join(code.co_names).encode())
    names.update(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _update_code(h, const, names)
        else:
            update_value(h, const)


def _update_function(h: Any, fn: Callable[..., Any], seen: set[int]) -> None:
    seen.add(id(fn))
    code = getattr(fn, "__code__", None)
    _tag(h, b"function", f"{fn.__module__}.{fn.__qualname__}".encode())
    if code is None:
        return
    names: set[str] = set()
    _update_code(h, code, names)
    update_value(h, getattr(fn, "__defaults__", None))
    update_value(h, getattr(fn, "__kwdefaults__", None))
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            _update_reference(h, cell.cell_contents, seen)
        except ValueError:  # an empty cell
            _tag(h, b"emptycell")
    fn_globals = getattr(fn, "__globals__", {})
    rebound = _stored_globals(code)
    for name in sorted(names):
        if name not in fn_globals:
            continue
        value = fn_globals[name]
        _tag(h, b"global", name.encode())
        if name in rebound:  # state the function itself changes (a counter), not code
            _tag(h, b"state", f"{type(value).__module__}.{type(value).__qualname__}".encode())
        elif isinstance(value, types.ModuleType) and _is_user_code(value.__name__):
            # `helpers.featurize(x)` or `settings.LIMIT`: follow what it uses of the module
            _tag(h, b"module", value.__name__.encode())
            for attr in sorted(names):
                member = getattr(value, attr, None)
                if member is not None and not isinstance(member, types.ModuleType):
                    _tag(h, b"attribute", attr.encode())
                    _update_reference(h, member, seen)
        else:
            _update_reference(h, value, seen)


def _stored_globals(code: types.CodeType) -> set[str]:
    """Names the code (or code nested in it) assigns with ``global``."""
    found = {i.argval for i in dis.get_instructions(code) if i.opname == "STORE_GLOBAL"}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _stored_globals(const)
    return found


def _update_reference(h: Any, value: Any, seen: set[int], *, follow: bool = False) -> None:
    """A global or closure value a function uses: follow user code, hash plain constants.

    ``follow`` hashes the code of ``value`` itself even where it is not the user's (the step
    being fingerprinted may live in an installed package).
    """
    wrapped = getattr(value, "fn", None)  # our decorated factories keep the function as .fn
    if callable(wrapped) and type(value).__module__.startswith("pytest_crystallize"):
        value = wrapped
    if isinstance(value, types.FunctionType):
        if id(value) in seen:
            _tag(h, b"seen", value.__qualname__.encode())
        elif follow or _is_user_code(value.__module__):
            _update_function(h, value, seen)
        else:
            _tag(h, b"libfunction", f"{value.__module__}.{value.__qualname__}".encode())
    elif isinstance(value, types.ModuleType):
        _tag(h, b"module", value.__name__.encode())
    elif isinstance(value, type):
        _tag(h, b"class", f"{value.__module__}.{value.__qualname__}".encode())
        if id(value) not in seen and (follow or _is_user_code(value.__module__)):
            seen.add(id(value))
            for attr, member in sorted(vars(value).items()):
                if isinstance(member, types.FunctionType | staticmethod | classmethod):
                    _tag(h, b"member", attr.encode())
                    _update_reference(h, getattr(member, "__func__", member), seen)
    elif _is_constant(value):
        update_value(h, value)
    else:  # an object such as a model or a client: its type, not its state
        kind = type(value)
        _tag(h, b"object", f"{kind.__module__}.{kind.__qualname__}".encode())


def _is_constant(value: Any, depth: int = 0) -> bool:
    """Immutable plain data: a module-level constant. Mutable globals (a counter dict, a
    list being filled) are state, not code, and only their type counts."""
    if value is None or type(value) in (bool, int, float, complex, str, bytes):
        return True
    if depth > 4:
        return False
    if type(value) in (tuple, frozenset):
        return len(value) <= 10_000 and all(_is_constant(v, depth + 1) for v in value)
    return isinstance(value, enum.Enum)


def code_fingerprint(fn: Any) -> bytes:
    """A digest of ``fn``'s code and of the user code and constants it references.

    ``fn`` may be a function or a class (its methods are followed).
    """
    h = hashlib.sha256()
    _update_reference(h, fn, set(), follow=True)
    return h.digest()


# --- steps and whole experiments ------------------------------------------------------------


def step_code(step: Any) -> bytes:
    """The code fingerprint of a step: its function, or its class for class-based steps."""
    factory = getattr(step, "factory", None)
    return code_fingerprint(factory.fn if factory is not None else type(step))


def fingerprint(experiment: Experiment, _seen: frozenset[int] = frozenset()) -> str:
    """A digest of what defines the experiment's data: change any of it and it changes.

    The upstream experiments whose artifacts it reads are part of its data too.
    """
    h = hashlib.sha256(b"crystallize-definition-1")
    seeds = experiment.get_plugin(SeedPlugin) or SeedPlugin()
    update_value(h, seeds.root_seed(experiment.artifact_name))  # other seeds: other data
    source = experiment.datasource
    h.update(step_code(source))
    _lenient(h, source.params)
    seen = _seen | {id(experiment)}
    for artifact in artifacts_read(source):
        producer = artifact.producer
        if producer is not None and id(producer) not in seen:  # a cycle is refused elsewhere
            update_value(h, (artifact.name, producer.replicates, fingerprint(producer, seen)))
    for step in experiment.steps:
        h.update(step_code(step))
        _lenient(h, step.params)
    _lenient(h, experiment.initial_ctx)
    for name, treatment in experiment.conditions():
        update_value(h, name)
        if treatment is not None:
            if treatment.is_callable:
                h.update(code_fingerprint(treatment.function))
            else:
                _lenient(h, treatment.apply_map)
    return h.hexdigest()[:16]


def _lenient(h: Any, value: Any) -> None:
    """Digest ``value``; a part that cannot be digested counts by its type alone."""
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            update_value(h, str(key))
            _lenient(h, value[key])
        return
    try:
        update_value(h, value)
    except TypeError:
        update_value(h, f"{type(value).__module__}.{type(value).__qualname__}")
