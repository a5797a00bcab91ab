"""Seed derivation: pure functions of names and numbers (the SeedPlugin lives in plugins).

The root seed of an experiment derives from its name through BLAKE2b (never ``hash()``, which
changes with ``PYTHONHASHSEED``), unless ``SeedPlugin(seed=...)`` sets it. Replicate *i* gets
the same integer seed in every condition (common random numbers, so conditions pair), and its
``ctx.rng`` is a ``numpy.random.Generator`` on ``SeedSequence(root, spawn_key=(i,))``. Named
streams (``ctx.rng_for("noise")``) add a stable key of the name to the spawn key, so one stream
is unaffected by how many numbers another one draws.
"""

from __future__ import annotations

import hashlib
import random
import sys

_SEED_LIMIT = 2**32


def stable_int(text: str, *, bits: int = 64) -> int:
    """Return a non-negative integer of ``bits`` bits derived from ``text``, stable everywhere."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=bits // 8).digest()
    return int.from_bytes(digest, "big")


def replicate_seed(root: int, replicate: int) -> int:
    """Return the 32-bit seed of ``replicate``: the same in every condition of an experiment."""
    return stable_int(f"crystallize-seed:{root}:{replicate}", bits=32)


def default_seed_function(seed: int) -> None:
    """Seed :mod:`random`, and numpy's legacy global state when numpy is already imported.

    numpy is never imported here: code that uses ``numpy.random`` imported it already.
    """
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % _SEED_LIMIT)
