"""Code fingerprints, and where the module-level data that code reads lives.

Code is fingerprinted by its bytecode, constants and names, following the user's own
functions and module-level constants it references, so editing a helper a step calls changes
the step's key. Module-level *data* the code reads (a dict, a list, a numpy array, a
dataclass or an object of the user's class) is not part of the fingerprint: its place is
recorded as a :class:`StateRef`, and :mod:`.state` digests its current content each time a
cache key is made. Data the code only writes (a counter it increments, a log it appends to)
is neither: it counts by its type, so a step that keeps such a record still hits.
"""

from __future__ import annotations

import dataclasses
import dis
import enum
import hashlib
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from .digests import tag, update_value

_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)
_OWN_DIR = str(PurePath(__file__).parent.parent)  # the whole package, not only the engine
MISSING = object()  # a reference whose name is gone
_VALUE_MODULES = frozenset({"datetime", "decimal", "fractions", "uuid", "re", "collections"})


def is_user_code(module_name: str | None) -> bool:
    """Whether ``module_name`` is the user's (not the standard library, an installed
    package, or pytest-crystallize itself)."""
    module = sys.modules.get(module_name or "")
    path = getattr(module, "__file__", None)
    if path is None:
        return module_name == "__main__"
    return not path.startswith(_LIBRARY_DIRS) and not path.startswith(_OWN_DIR)


def is_data(value: Any) -> bool:
    """Whether ``value`` is data whose content a key must follow: a container, an array, a
    dataclass instance, an object of the user's class, a value type of the standard library.

    Anything else (a library object such as a logger, a client, a ufunc; this package's own
    objects, such as an Artifact) counts by its type.
    """
    kind = type(value)
    if isinstance(value, dict | list | set | frozenset | tuple | bytearray):
        return True
    if kind.__module__.startswith("pytest_crystallize"):
        return False
    if kind.__module__ == "numpy" and kind.__name__ == "ndarray":
        return True
    if dataclasses.is_dataclass(value) or callable(getattr(value, "__crystallize_digest__", None)):
        return True
    return kind.__module__ in _VALUE_MODULES or is_user_code(kind.__module__)


@dataclass(frozen=True)
class StateRef:
    """Where a module-level value the code reads lives: a name in a module's namespace, an
    attribute of a module, or a closure cell. ``value()`` reads it now."""

    label: str
    holder: Any = dataclasses.field(compare=False)
    name: str

    def value(self) -> Any:
        """The value held there now (:data:`MISSING` when the name is gone)."""
        if isinstance(self.holder, dict):
            return self.holder.get(self.name, MISSING)
        if isinstance(self.holder, types.CellType):
            try:
                return self.holder.cell_contents
            except ValueError:  # an empty cell
                return MISSING
        return getattr(self.holder, self.name, MISSING)


@dataclass(frozen=True)
class CodePrint:
    """A code fingerprint: the digest of the code, and the module-level data it reads."""

    digest: bytes
    state: tuple[StateRef, ...]


class _Walk:
    """One fingerprint being computed: the hash, what was followed, the state found."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.seen: set[int] = set()
        self.state: list[StateRef] = []

    def data(self, ref: StateRef) -> None:
        """Record data the code reads: its place is hashed, its content is digested later."""
        tag(self.h, b"stateref", ref.label.encode())
        self.state.append(ref)


def _update_code(h: Any, code: types.CodeType, names: set[str]) -> None:
    tag(h, b"code", code.co_code)
    tag(h, b"names", "\0".join(code.co_names).encode())
    names.update(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _update_code(h, const, names)
        else:
            update_value(h, const)


def _update_function(walk: _Walk, fn: Callable[..., Any]) -> None:
    h = walk.h
    walk.seen.add(id(fn))
    code = getattr(fn, "__code__", None)
    tag(h, b"function", f"{fn.__module__}.{fn.__qualname__}".encode())
    if code is None:
        return
    names: set[str] = set()
    _update_code(h, code, names)
    update_value(h, getattr(fn, "__defaults__", None))
    update_value(h, getattr(fn, "__kwdefaults__", None))
    for index, cell in enumerate(getattr(fn, "__closure__", None) or ()):
        label = f"{fn.__module__}.{fn.__qualname__}.<closure {code.co_freevars[index]}>"
        _update_reference(walk, StateRef(label, cell, ""))
    fn_globals = getattr(fn, "__globals__", {})
    rebound = _stored_globals(code)
    for name in sorted(names):
        if name not in fn_globals:
            continue
        value = fn_globals[name]
        tag(h, b"global", name.encode())
        kind = f"{type(value).__module__}.{type(value).__qualname__}".encode()
        if name in rebound:  # state the function itself changes (a counter), not code
            tag(h, b"state", kind)
        elif is_data(value) and not _reads(code, name, _written(value)):
            tag(h, b"object", kind)  # data it only changes (a log it appends to): its type
        elif isinstance(value, types.ModuleType) and is_user_code(value.__name__):
            # `helpers.featurize(x)` or `settings.LIMIT`: follow what it uses of the module
            tag(h, b"module", value.__name__.encode())
            for attr in sorted(names):
                member = getattr(value, attr, None)
                if member is not None and not isinstance(member, types.ModuleType):
                    tag(h, b"attribute", attr.encode())
                    _update_reference(walk, StateRef(f"{value.__name__}.{attr}", value, attr))
        else:
            _update_reference(walk, StateRef(f"{fn.__module__}.{name}", fn_globals, name))


def _stored_globals(code: types.CodeType) -> set[str]:
    """Names the code (or code nested in it) assigns with ``global``."""
    found = {i.argval for i in dis.get_instructions(code) if i.opname == "STORE_GLOBAL"}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _stored_globals(const)
    return found


# --- which globals the code reads, and which it only writes -------------------------------

_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
_COPIES = frozenset({"COPY", "DUP_TOP_TWO"})
_SWAPS = frozenset({"SWAP", "ROT_THREE"})
_SIMPLE = ("LOAD_CONST", "LOAD_FAST", "LOAD_DEREF", "LOAD_SMALL_INT")
# After the load of x: `x[k] = v` and `del x[k]`; `x[k] += v` (3.11 and later, then 3.10).
_WRITES = ("SW", "SCCRSIXXW", "SCRSIXW")
# Methods of the builtin containers that change them and return None whatever they hold.
_MUTATORS = frozenset(
    {"append", "extend", "add", "update", "insert", "clear", "discard", "appendleft", "extendleft"}
)


def _written(value: Any) -> bool:
    """Whether ``value``'s mutator methods are the builtin containers' (not overridden)."""
    kind = type(value)
    return kind in (list, dict, set, bytearray) or kind.__module__ == "collections"


def _token(ins: dis.Instruction) -> str:
    name = ins.opname
    if name in _COPIES or name in _SWAPS:
        return "C" if name in _COPIES else "X"
    if name in ("STORE_SUBSCR", "DELETE_SUBSCR"):
        return "W"
    if name == "BINARY_SUBSCR" or (name == "BINARY_OP" and ins.argrepr == "[]"):
        return "R"
    if name.startswith("INPLACE_") or (name == "BINARY_OP" and ins.argrepr.endswith("=")):
        return "I"
    # One value pushed (LOAD_FAST_LOAD_FAST pushes two: not simple).
    return "S" if name.startswith(_SIMPLE) and name.count("LOAD") == 1 else "?"


def _only_writes(after: list[dis.Instruction], mutators: bool) -> bool:
    """Whether what follows a load of a value only changes it: ``x[k] = v``, ``del x[k]``,
    ``x[k] += v``, or (``mutators``) ``x.append(v)`` and the like."""
    if mutators and after and after[0].opname in ("LOAD_METHOD", "LOAD_ATTR"):
        return after[0].argval in _MUTATORS
    return "".join(_token(ins) for ins in after[:9]).startswith(_WRITES)


def _instructions(code: types.CodeType) -> Iterator[list[dis.Instruction]]:
    yield list(dis.get_instructions(code))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _instructions(const)


def _reads(code: types.CodeType, name: str, mutators: bool) -> bool:
    """Whether the code reads global ``name`` somewhere, rather than only changing it."""
    for instructions in _instructions(code):
        for index, ins in enumerate(instructions):
            if (
                ins.opname in _LOADS
                and ins.argval == name
                and not _only_writes(instructions[index + 1 : index + 10], mutators)
            ):
                return True
    return False


# --- references ---------------------------------------------------------------------------


def _update_reference(walk: _Walk, ref: StateRef, *, follow: bool = False) -> None:
    """A global or closure value a function uses: follow user code, hash plain constants,
    record data.

    ``follow`` hashes the code of the value itself even where it is not the user's (the step
    being fingerprinted may live in an installed package).
    """
    h, seen = walk.h, walk.seen
    value = ref.value()
    wrapped = getattr(value, "fn", None)  # our decorated factories keep the function as .fn
    if callable(wrapped) and type(value).__module__.startswith("pytest_crystallize"):
        value = wrapped
    if value is MISSING:
        tag(h, b"emptycell")
    elif isinstance(value, types.FunctionType):
        if id(value) in seen:
            tag(h, b"seen", value.__qualname__.encode())
        elif follow or is_user_code(value.__module__):
            _update_function(walk, value)
        else:
            tag(h, b"libfunction", f"{value.__module__}.{value.__qualname__}".encode())
    elif isinstance(value, types.ModuleType):
        tag(h, b"module", value.__name__.encode())
    elif isinstance(value, type):
        tag(h, b"class", f"{value.__module__}.{value.__qualname__}".encode())
        if id(value) not in seen and (follow or is_user_code(value.__module__)):
            seen.add(id(value))
            for attr, member in sorted(vars(value).items()):
                if isinstance(member, types.FunctionType | staticmethod | classmethod):
                    tag(h, b"member", attr.encode())
                    method = getattr(member, "__func__", member)
                    _update_reference(walk, _held(method, f"{ref.label}.{attr}"))
    elif _is_constant(value):
        update_value(h, value)
    elif is_data(value):
        walk.data(ref)
    else:  # an object such as a model or a client: its type, not its state
        kind = type(value)
        tag(h, b"object", f"{kind.__module__}.{kind.__qualname__}".encode())


def _held(value: Any, label: str) -> StateRef:
    """A reference to a value that lives nowhere else (a method of a class)."""
    return StateRef(label, {"": value}, "")


def _is_constant(value: Any, depth: int = 0) -> bool:
    """Immutable plain data: a module-level constant, part of the code's fingerprint."""
    if value is None or type(value) in (bool, int, float, complex, str, bytes):
        return True
    if depth > 4:
        return False
    if type(value) in (tuple, frozenset):
        return len(value) <= 10_000 and all(_is_constant(v, depth + 1) for v in value)
    return isinstance(value, enum.Enum)


def code_print(fn: Any) -> CodePrint:
    """The fingerprint of ``fn``'s code and of the user code and constants it references,
    with the module-level data it reads. ``fn`` may be a function or a class (its methods are
    followed)."""
    walk = _Walk()
    _update_reference(walk, _held(fn, getattr(fn, "__qualname__", "")), follow=True)
    return CodePrint(walk.h.digest(), tuple(walk.state))


def code_fingerprint(fn: Any) -> bytes:
    """A digest of ``fn``'s code and of the user code and constants it references.

    ``fn`` may be a function or a class (its methods are followed).
    """
    return code_print(fn).digest


def step_print(step: Any) -> CodePrint:
    """The code print of a step: its function, or its class for class-based steps."""
    factory = getattr(step, "factory", None)
    return code_print(factory.fn if factory is not None else type(step))
