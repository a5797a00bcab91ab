"""Digests of values and code: equal for equal inputs, different for any change, stable."""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import json
import struct
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from _support import run_python
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_crystallize._engine.cache import StepCache
from pytest_crystallize._engine.fingerprint import code_fingerprint, digest_value

# When a property fails, hypothesis's pytest plugin imports libcst, whose import warns about
# mypy_extensions.TypedDict in some versions; under `filterwarnings = error` that turns the
# failure into an INTERNALERROR. Import it once here with the warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.suppress(ImportError):
        import hypothesis.extra._patching  # noqa: F401

PROPERTIES = settings(max_examples=150, deadline=None, database=None, derandomize=True)

# --- values -------------------------------------------------------------------------------

hashables = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    st.binary(max_size=6),
)
leaves = st.one_of(hashables, st.complex_numbers(allow_nan=False))
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(hashables, children, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
    ),
    max_leaves=12,
)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.dtype(t) for t in ("int8", "int32", "int64", "float32", "float64")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)


def canonical(value: Any) -> Any:
    """What a digest must distinguish: type and value, arrays by dtype, shape and bytes; sets
    and dicts regardless of order (a set and a frozenset alike)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return ("dict", frozenset((canonical(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return ("set", frozenset(canonical(v) for v in value))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(canonical(v) for v in value))
    if isinstance(value, float | complex):
        return (type(value).__name__, repr(value))
    return (type(value).__name__, value)


def reordered(value: Any) -> Any:
    """An equal copy with every dict and set built in reverse insertion order."""
    if isinstance(value, dict):
        return {k: reordered(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, set | frozenset):
        return type(value)(reversed(list(value)))
    if isinstance(value, list | tuple):
        return type(value)(reordered(v) for v in value)
    if isinstance(value, np.ndarray):
        return np.array(value, order="F", copy=True)
    return copy.deepcopy(value)


@PROPERTIES
@given(value=st.one_of(values, arrays))
def test_equal_values_have_equal_digests_whatever_their_insertion_order(value: Any) -> None:
    digest = digest_value(value)
    assert digest_value(copy.deepcopy(value)) == digest
    assert digest_value(reordered(value)) == digest
    assert digest_value({"wrapped": [value]}) == digest_value({"wrapped": [reordered(value)]})


@PROPERTIES
@given(a=st.one_of(values, arrays), b=st.one_of(values, arrays))
def test_different_values_have_different_digests(a: Any, b: Any) -> None:
    if canonical(a) == canonical(b):
        assert digest_value(a) == digest_value(b)
    else:
        assert digest_value(a) != digest_value(b)
        assert digest_value([a, 1]) != digest_value([b, 1])


@PROPERTIES
@given(array=arrays, choice=st.data())
def test_an_array_changed_in_dtype_shape_or_one_value_has_another_digest(
    array: np.ndarray, choice: st.DataObject
) -> None:
    digest = digest_value(array)
    other_dtype = "float64" if array.dtype != np.float64 else "float32"
    with np.errstate(over="ignore"):
        assert digest_value(array.astype(other_dtype)) != digest
    if array.ndim:
        reshaped = array.reshape(-1, 1) if array.ndim == 1 else array.ravel()
        assert digest_value(reshaped) != digest
    if array.size:
        changed = array.copy()
        index = choice.draw(st.integers(0, array.size - 1))
        flat = changed.reshape(-1)
        flat[index] = 1 if flat[index] != 1 else 2
        assert digest_value(changed) != digest


def test_memoryviews_whose_bytes_shift_from_one_to_the_next_have_different_digests() -> None:
    # The bytes of a memoryview are hashed without their length, so the boundary between two
    # consecutive memoryviews can move: both lists below feed the same bytes to the hash.
    empty_tag = b"bytes" + struct.pack("<Q", 0)
    first = [memoryview(b"a"), memoryview(empty_tag + b"b")]
    second = [memoryview(b"a" + empty_tag), memoryview(b"b")]
    assert digest_value(first) != digest_value(second)


def test_values_nested_deeper_than_the_walk_still_differ() -> None:
    def nest(leaf: Any, depth: int = 80) -> Any:
        for _ in range(depth):
            leaf = [leaf]
        return leaf

    assert digest_value(nest(1)) != digest_value(nest(2))
    assert digest_value(nest(1)) != digest_value(nest(1, depth=81))
    assert digest_value(nest(1)) == digest_value(nest(1))  # two lists, built alike


def test_a_self_referencing_list_has_a_digest_that_depends_on_its_content() -> None:
    def looped(first: int) -> list[Any]:
        value: list[Any] = [first]
        value.append(value)
        return value

    assert digest_value(looped(1)) == digest_value(looped(1))  # two lists, built alike
    assert digest_value(looped(1)) != digest_value(looped(2))
    assert digest_value(looped(1)) != digest_value([1, [1]])  # the loop is not a mere leaf


# --- stable across processes --------------------------------------------------------------

HASHSEED_MODULE = """\
from __future__ import annotations

LABELS = frozenset({"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"})
WEIGHTS = (("alpha", 1.0), ("beta", 2.0))


def step(value, ctx, *, names=("a", "b")):
    if value in {"red", "green", "blue", "cyan", "magenta", "yellow"}:
        return {"hit": sorted(LABELS), "w": dict(WEIGHTS)}
    return value
"""

HASHSEED_SCRIPT = """\
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import hashseed_step
from pytest_crystallize._engine.cache import StepCache
from pytest_crystallize._engine.fingerprint import code_fingerprint, digest_value
print(json.dumps(__EXPRESSIONS__))
"""

EXPRESSIONS = """[
    list(hashseed_step.LABELS),
    digest_value({"a", "b", "c", "d", "e", "f", "g", "h"}).hex(),
    digest_value({"x": 1, "y": {"b", "a"}, "z": frozenset({"q", "r"})}).hex(),
    code_fingerprint(hashseed_step.step).hex(),
    StepCache(".", key=b"k").step_key(
        code_fingerprint(hashseed_step.step),
        {"names": {"s", "t", "u"}, "alpha": 0.5},
        {"rows": np.arange(10.0), "tags": {"p", "q"}},
        (7, 1, 123456789),
    ),
]"""


def test_digests_and_keys_are_the_same_under_any_pythonhashseed(tmp_path: Path) -> None:
    (tmp_path / "hashseed_step.py").write_text(HASHSEED_MODULE)
    script = HASHSEED_SCRIPT.replace("__EXPRESSIONS__", EXPRESSIONS)
    outputs = []
    for seed in ("1", "2"):
        done = run_python("-c", script, str(tmp_path), PYTHONHASHSEED=seed)
        outputs.append(json.loads(done.stdout))
    (order_1, *digests_1), (order_2, *digests_2) = outputs
    assert order_1 != order_2  # the hash seeds really changed set iteration order
    assert digests_1 == digests_2
    # And this process (its own hash seed) agrees.
    sys.path.insert(0, str(tmp_path))
    try:
        namespace = {
            "np": np,
            "StepCache": StepCache,
            "code_fingerprint": code_fingerprint,
            "digest_value": digest_value,
            "hashseed_step": importlib.import_module("hashseed_step"),
        }
        assert eval(EXPRESSIONS, namespace)[1:] == digests_1
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("hashseed_step", None)


# --- code ---------------------------------------------------------------------------------


STEP = """\
from __future__ import annotations

import numpy as np

from pytest_crystallize import pipeline_step

SCALE = 2.0
CALLS = {"n": 0}
SEEN = []


def helper(value):
    return value * SCALE


@pipeline_step(cacheable=True)
def step(value, ctx, *, delta=0.0):
    CALLS["n"] += 1
    SEEN.append(value)
    return float(np.mean(helper(value))) + delta
"""


def fingerprint_of(load: Callable[..., ModuleType], source: str) -> bytes:
    return code_fingerprint(load("fp_step", source).step.fn)


def test_the_same_code_loaded_twice_has_the_same_fingerprint(load: Any) -> None:
    first = load("fp_step", STEP).step.fn
    second = load("fp_step", STEP).step.fn
    assert first is not second  # a fresh module: only the source is shared
    assert code_fingerprint(first) == code_fingerprint(second)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("float(np.mean(helper(value))) + delta", "float(np.mean(helper(value))) - delta"),
        ("float(np.mean(", "float(np.median("),
        ("return value * SCALE", "return value * SCALE + 1"),
        ("SCALE = 2.0", "SCALE = 3.0"),
        ("delta=0.0", "delta=1.0"),
    ],
    ids=["step body", "library call", "helper", "module constant", "default"],
)
def test_editing_the_step_or_what_it_uses_changes_the_fingerprint(
    load: Any, old: str, new: str
) -> None:
    assert old in STEP
    assert fingerprint_of(load, STEP) != fingerprint_of(load, STEP.replace(old, new))


def test_lines_and_comments_around_the_step_leave_the_fingerprint_alone(load: Any) -> None:
    moved = STEP.replace("SEEN = []\n", "SEEN = []\n# a comment\n\n\n").replace(
        "    CALLS", "    # counting\n    CALLS"
    )
    assert fingerprint_of(load, moved) == fingerprint_of(load, STEP)


def test_mutable_global_state_the_step_updates_leaves_the_fingerprint_alone(load: Any) -> None:
    module = load("fp_step", STEP)
    before = code_fingerprint(module.step.fn)
    module.step.fn(np.arange(3.0), None)
    module.step.fn(np.arange(3.0), None)
    assert module.CALLS == {"n": 2}
    assert len(module.SEEN) == 2
    assert code_fingerprint(module.step.fn) == before


def test_a_global_counter_the_step_rebinds_leaves_the_fingerprint_alone(load: Any) -> None:
    module = load(
        "fp_counter",
        """\
        CALLS = 0


        def step(value, ctx):
            global CALLS
            CALLS += 1
            return value * 2
        """,
    )
    before = code_fingerprint(module.step)
    module.step(1, None)
    assert module.CALLS == 1
    assert code_fingerprint(module.step) == before


FEATURIZE = "LIMIT = 1\n\n\ndef featurize(value):\n    return value * 2\n"


@pytest.mark.parametrize(
    ("user", "helpers", "edited"),
    [
        pytest.param(
            "from fp_other import featurize\n\n\ndef step(value):\n    return featurize(value)\n",
            FEATURIZE,
            FEATURIZE.replace("value * 2", "value * 3"),
            id="helper-imported-by-name",
        ),
        pytest.param(
            "import fp_other\n\n\ndef step(value):\n    return fp_other.featurize(value)\n",
            FEATURIZE,
            FEATURIZE.replace("value * 2", "value * 3"),
            id="helper-called-through-its-module",
        ),
        pytest.param(
            "import fp_other\n\n\ndef step(value):\n    return value * fp_other.LIMIT\n",
            FEATURIZE,
            FEATURIZE.replace("LIMIT = 1", "LIMIT = 2"),
            id="constant-read-through-its-module",
        ),
    ],
)
def test_what_a_step_uses_from_another_user_module_is_followed(
    load: Any, user: str, helpers: str, edited: str
) -> None:
    load("fp_other", helpers)
    before = code_fingerprint(load("fp_user", user).step)
    load("fp_other", edited)  # the other module changes, the step's own module does not
    assert code_fingerprint(load("fp_user", user).step) != before


def test_a_class_based_step_is_fingerprinted_by_its_methods(load: Any) -> None:
    source = """\
    from pytest_crystallize import PipelineStep

    OFFSET = 1


    class Offset(PipelineStep):
        cacheable = True

        def __call__(self, data, ctx):
            return self.shift(data)

        def shift(self, data):
            return data + OFFSET
    """
    before = code_fingerprint(load("fp_class", source).Offset)
    assert code_fingerprint(load("fp_class", source).Offset) == before
    edited = source.replace("data + OFFSET", "data - OFFSET")
    assert code_fingerprint(load("fp_class", edited).Offset) != before
    constant = source.replace("OFFSET = 1", "OFFSET = 2")
    assert code_fingerprint(load("fp_class", constant).Offset) != before


def test_mutually_recursive_helpers_are_fingerprinted_once(load: Any) -> None:
    source = """\
    def even(n):
        return n == 0 or odd(n - 1)


    def odd(n):
        return n != 0 and even(n - 1)
    """
    module = load("fp_recursive", source)
    assert code_fingerprint(module.even) == code_fingerprint(load("fp_recursive", source).even)
    edited = source.replace("n != 0", "n > 0")
    assert code_fingerprint(load("fp_recursive", edited).even) != code_fingerprint(module.even)
