"""Seed derivation and the SeedPlugin.

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
from collections.abc import Callable
from typing import Any

from .errors import CrystallizeUsageError
from .plugins import BasePlugin

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


class SeedPlugin(BasePlugin):
    """Decides the root seed and seeds global random state before each run.

    Parameters
    ----------
    seed:
        The root seed. ``None`` (the default) derives it from the experiment's name, so every
        run of an experiment is reproducible without configuration.
    auto_seed:
        Seed :mod:`random` and numpy's legacy global state before each run (through
        ``seed_fn``). With ``False`` global state is left alone; ``ctx.seed``, ``ctx.rng`` and
        ``ctx.rng_for`` are always seeded.
    seed_fn:
        Called with the run's seed instead of :func:`default_seed_function`, for example to
        seed torch as well.
    """

    def __init__(
        self,
        seed: int | None = None,
        auto_seed: bool = True,
        seed_fn: Callable[[int], Any] | None = None,
    ) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            msg = f"SeedPlugin(seed=...) takes an int or None, got {seed!r} ({type(seed).__name__})"
            raise CrystallizeUsageError(msg)
        if seed is not None and seed < 0:
            msg = f"SeedPlugin(seed=...) must be >= 0, got {seed!r}"
            raise CrystallizeUsageError(msg)
        if seed_fn is not None and not callable(seed_fn):
            msg = f"SeedPlugin(seed_fn=...) must be callable, got {seed_fn!r}"
            raise CrystallizeUsageError(msg)
        self.seed = seed
        self.auto_seed = auto_seed
        self.seed_fn = seed_fn

    def root_seed(self, experiment_name: str) -> int:
        """Return the root seed for an experiment of this name."""
        if self.seed is not None:
            return self.seed
        return stable_int(f"crystallize-root:{experiment_name}")

    def global_seeder(self) -> Callable[[int], Any] | None:
        """What each run calls with its seed before its data source (``None``: nothing)."""
        if not self.auto_seed:
            return None
        return self.seed_fn or default_seed_function

    def __repr__(self) -> str:
        return f"SeedPlugin(seed={self.seed!r}, auto_seed={self.auto_seed!r})"
