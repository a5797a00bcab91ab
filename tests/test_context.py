"""FrozenContext: append-only values, copies on read, metrics, artifacts and random streams."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _support import raises_message

from pytest_crystallize import (
    ContextMutationError,
    CrystallizeUsageError,
    FrozenContext,
    standalone_context,
)


def test_a_new_key_can_be_added_but_an_existing_key_cannot_be_replaced():
    ctx = FrozenContext({"a": 1})
    ctx.add("b", 2)
    assert ctx["b"] == 2

    with pytest.raises(
        ContextMutationError, match=re.escape("context key 'a' is already set (to 1)")
    ):
        ctx.add("a", 5)
    with pytest.raises(
        ContextMutationError, match=re.escape("context key 'b' is already set (to 2)")
    ):
        ctx["b"] = 3
    assert ctx["a"] == 1
    assert ctx["b"] == 2


def test_reading_a_mutable_value_returns_a_copy_the_caller_may_change():
    ctx = FrozenContext({"items": [1, 2], "nested": {"k": [0]}})
    items = ctx["items"]
    items.append(3)
    ctx.get("nested")["k"].append(1)

    assert ctx["items"] == [1, 2]
    assert ctx["nested"] == {"k": [0]}


def test_the_initial_mapping_is_copied_so_later_changes_to_it_do_not_leak_in():
    initial = {"items": [1]}
    ctx = FrozenContext(initial)
    initial["items"].append(2)
    assert ctx["items"] == [1]


def test_a_numpy_array_is_read_as_a_read_only_view():
    ctx = FrozenContext({"arr": np.arange(3)})
    view = ctx["arr"]
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 10
    assert ctx["arr"].tolist() == [0, 1, 2]


def test_as_dict_is_a_read_only_snapshot():
    ctx = FrozenContext({"a": [1]})
    snapshot = ctx.as_dict()
    with pytest.raises(TypeError):
        snapshot["b"] = 2  # type: ignore[index]
    snapshot["a"].append(2)
    assert ctx["a"] == [1]


def test_a_standalone_context_is_replicate_zero_of_the_baseline_with_the_given_seed():
    ctx = standalone_context({"delta": 1}, seed=7)
    assert ctx["condition"] == "baseline"
    assert ctx["replicate"] == 0
    assert ctx.seed == 7
    assert ctx["delta"] == 1
    assert "delta" in ctx
    assert sorted(ctx.keys()) == ["condition", "delta", "replicate", "seed"]


def test_metrics_keep_every_value_recorded_under_a_name():
    ctx = standalone_context()
    ctx.metrics.add("loss", 0.5)
    ctx.record("loss", 0.25, tags={"epoch": 2})

    assert ctx.metrics["loss"] == (0.5, 0.25)
    assert ctx.metrics.get_tags("loss") == (None, {"epoch": 2})
    assert dict(ctx.metrics.as_dict()) == {"loss": (0.5, 0.25)}
    with pytest.raises(CrystallizeUsageError, match=re.escape("got ''")):
        ctx.metrics.add("", 1)


def test_an_artifact_must_be_bytes_and_the_error_says_to_encode_text():
    ctx = standalone_context()
    ctx.artifacts.add("model.bin", b"\x00\x01")
    assert list(ctx.artifacts) == [("model.bin", b"\x00\x01")]

    with raises_message(
        CrystallizeUsageError,
        "artifact 'f.txt' must be bytes, got str 'text'; encode text with .encode()",
    ):
        ctx.artifacts.add("f.txt", "text")  # type: ignore[arg-type]


def test_an_artifact_name_must_be_a_plain_file_name():
    ctx = standalone_context()
    for bad in ("", "..", "sub/file.txt"):
        with pytest.raises(CrystallizeUsageError, match=re.escape(f"got {bad!r}")):
            ctx.artifacts.add(bad, b"x")


def test_one_step_cannot_add_two_artifacts_with_the_same_name():
    ctx = standalone_context()
    ctx.artifacts.add("a.txt", b"1")
    with pytest.raises(ContextMutationError, match=re.escape("artifact 'a.txt' was already added")):
        ctx.artifacts.add("a.txt", b"2")


def test_ctx_rng_and_a_named_stream_are_independent():
    undisturbed = standalone_context(seed=11)
    reference = undisturbed.rng.random(5).tolist()
    reference_named = standalone_context(seed=11).rng_for("a").random(5).tolist()

    ctx = standalone_context(seed=11)
    ctx.rng_for("a").random(1000)  # a heavy user of the named stream...
    assert ctx.rng.random(5).tolist() == reference  # ...leaves ctx.rng where it was

    other = standalone_context(seed=11)
    other.rng.random(1000)
    assert other.rng_for("a").random(5).tolist() == reference_named

    assert reference != reference_named
    assert standalone_context(seed=11).rng_for("b").random(5).tolist() != reference_named


def test_the_same_seed_gives_the_same_streams_and_another_seed_other_streams():
    first = standalone_context(seed=3).rng.random(3).tolist()
    again = standalone_context(seed=3).rng.random(3).tolist()
    other = standalone_context(seed=4).rng.random(3).tolist()
    assert first == again
    assert first != other


def test_rng_for_takes_a_stream_name():
    with pytest.raises(CrystallizeUsageError, match=re.escape("got 3")):
        standalone_context().rng_for(3)  # type: ignore[arg-type]
