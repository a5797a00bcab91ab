"""Module state digested by content, each time a cache key is made.

A step's code print (:mod:`.codeprint`) lists the module-level data its code reads; this
module feeds the current content of each into the key, so editing a module-level dict, list,
array, dataclass or object between two runs recomputes the step. Containers are walked
element by element (dicts and sets in the order of their elements' digests, so insertion
order and ``PYTHONHASHSEED`` do not matter); flat containers of numbers and strings are
pickled in one call, numpy arrays hashed by their buffer, at memory speed; functions and
classes met inside data count by their code print (and the data it reads, in turn). A
reference cycle counts by where it points; past :data:`MAX_NODES` objects or
:data:`MAX_DEPTH` levels, what is left is pickled whole (complete, at C speed). Objects of
libraries (a logger, a client) count by their type, as they do in the code print, unless
their class defines ``__crystallize_digest__()``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import pickle
import types
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

from .codeprint import MISSING, CodePrint, StateRef, code_print, is_user_code
from .digests import tag, update_array, update_buffer, update_pickled, update_value
from .errors import CrystallizeUsageError

MAX_NODES = 100_000
MAX_DEPTH = 64
_SCALARS = frozenset({int, float, complex, str, bytes, bool, type(None)})
_PLAIN = (int, float, complex, str, bytes, bool, type(None), range, enum.Enum, PurePath)


class _StateWalk:
    """One digest of module state into ``h``: the path walked (for cycles), the code prints
    already fed, and how many objects were walked one by one."""

    def __init__(self, h: Any) -> None:
        self.h = h
        self.path: dict[int, int] = {}
        self.prints: set[int] = set()
        self.nodes = 0

    def refs(self, refs: Iterable[StateRef]) -> None:
        for ref in refs:
            tag(self.h, b"state", ref.label.encode())
            try:
                self.value(ref.value(), 0)
            except CrystallizeUsageError:
                raise
            except (TypeError, RecursionError) as exc:
                msg = (
                    f"cannot digest the module-level value {ref.label} that a cacheable step "
                    f"reads ({type(exc).__name__}: {exc}); make it picklable, give its class "
                    f"a __crystallize_digest__() method returning plain data, or pass the "
                    f"value to the step as a parameter"
                )
                raise CrystallizeUsageError(msg) from exc

    def value(self, value: Any, depth: int) -> None:
        h = self.h
        if value is MISSING:
            tag(h, b"missing")
            return
        kind = type(value)
        if isinstance(value, _PLAIN) or (kind.__module__ == "numpy" and kind.__name__ != "ndarray"):
            update_value(h, value)  # numpy scalars too
            return
        if isinstance(value, types.FunctionType | type) and is_user_code(value.__module__):
            self.code(value)
            return
        if isinstance(value, types.FunctionType | type | types.ModuleType):
            named = getattr(value, "__qualname__", value.__name__)
            tag(h, b"named", f"{getattr(value, '__module__', '')}.{named}".encode())
            return
        if kind.__module__ == "numpy" and kind.__name__ == "ndarray" and not value.dtype.hasobject:
            update_array(h, value, depth)  # at memory speed, however large, whatever the budget
            return
        key = id(value)
        if key in self.path:  # a reference cycle: where it points back to
            tag(h, b"cycle", str(depth - self.path[key]).encode())
            return
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            update_pickled(h, value)
            return
        self.path[key] = depth
        try:
            self.container(value, depth + 1)
        finally:
            del self.path[key]

    def code(self, value: Any) -> None:
        kind = f"{value.__module__}.{value.__qualname__}".encode()
        if id(value) in self.prints:
            tag(self.h, b"seen", kind)
            return
        self.prints.add(id(value))
        printed: CodePrint = code_print(value)
        tag(self.h, b"code", printed.digest)
        self.refs(printed.state)

    def container(self, value: Any, depth: int) -> None:
        h, kind = self.h, type(value)
        name = f"{kind.__module__}.{kind.__qualname__}".encode()
        if kind.__module__ == "numpy" and kind.__name__ == "ndarray":  # of objects
            tag(h, b"objarray", repr((value.dtype.str, value.shape)).encode())
            self.value(value.tolist(), depth)
        elif isinstance(value, Mapping):
            tag(h, b"map", name + b"|" + str(len(value)).encode())
            factory = getattr(value, "default_factory", None)
            if factory is not None:
                self.value(factory, depth)
            if _flat(value.keys()) and _flat(value.values()):
                _pickled(h, _sorted(list(value.items())))
                return
            pairs = sorted((self.sub(k, depth), v) for k, v in value.items())
            for key_digest, item in pairs:
                h.update(key_digest)
                self.value(item, depth)
        elif isinstance(value, list | tuple):
            tag(h, b"seq", name + b"|" + str(len(value)).encode())
            if _flat(value):
                _pickled(h, list(value))
                return
            for item in value:
                self.value(item, depth)
        elif isinstance(value, set | frozenset):
            tag(h, b"set", name + b"|" + str(len(value)).encode())
            if _flat(value):
                _pickled(h, _sorted(list(value)))
                return
            for digest in sorted(self.sub(item, depth) for item in value):
                h.update(digest)
        else:
            self.instance(value, name, depth)

    def instance(self, value: Any, name: bytes, depth: int) -> None:
        h, kind = self.h, type(value)
        if kind.__module__.startswith("pytest_crystallize"):  # an Artifact, a Treatment
            tag(h, b"type", name)
        elif dataclasses.is_dataclass(value):
            tag(h, b"dataclass", name)
            if is_user_code(kind.__module__):
                self.code(kind)
            for f in dataclasses.fields(value):
                tag(h, b"field", f.name.encode())
                self.value(getattr(value, f.name, MISSING), depth)
        elif callable(getattr(value, "__crystallize_digest__", None)):
            tag(h, b"custom", name)
            self.value(value.__crystallize_digest__(), depth)
        elif is_user_code(kind.__module__):
            tag(h, b"object", name)
            self.code(kind)
            for attr in sorted(getattr(value, "__dict__", {})):
                tag(h, b"attribute", attr.encode())
                self.value(vars(value)[attr], depth)
            for attr in sorted(_slots(kind)):
                tag(h, b"slot", attr.encode())
                self.value(getattr(value, attr, MISSING), depth)
        elif kind.__module__ == "re":
            update_value(h, (kind.__name__, value.pattern, value.flags))
        elif kind.__module__ in ("datetime", "decimal", "fractions", "uuid", "collections"):
            update_pickled(h, value)
        else:  # a library object: its type, as in the code print
            tag(h, b"type", name)

    def sub(self, value: Any, depth: int) -> bytes:
        """The digest of ``value`` alone (a dict key, a set element), walked as state."""
        outer, self.h = self.h, hashlib.sha256()
        try:
            self.value(value, depth)
            digest: bytes = self.h.digest()
            return digest
        finally:
            self.h = outer


def _flat(values: Iterable[Any]) -> bool:
    return all(type(v) in _SCALARS for v in values)


def _sorted(items: list[Any]) -> list[Any]:
    """``items`` in a canonical order: sorted, else by their digests (mixed types)."""
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=lambda item: hashlib.sha256(pickle.dumps(item, 5)).digest())


def _pickled(h: Any, flat: list[Any]) -> None:
    """Numbers and strings, in one C-speed pickle (unambiguous for these types)."""
    data = pickle.dumps(flat, protocol=5)
    tag(h, b"flat", str(len(data)).encode())
    update_buffer(h, memoryview(data))


def _slots(kind: type) -> set[str]:
    names: set[str] = set()
    for klass in kind.__mro__:
        slots = vars(klass).get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names - {"__dict__", "__weakref__"}


def update_state(h: Any, refs: Iterable[StateRef]) -> None:
    """Feed the current content of the module-level values ``refs`` point to into ``h``."""
    _StateWalk(h).refs(refs)
