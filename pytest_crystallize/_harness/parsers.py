"""Parsers of the settings' values: each takes the text given on the command line or in the
ini file and returns the value, or raises ``ValueError`` saying what was expected and echoing
the text. ``options.py`` names the option around the message.

Imported by ``options.py`` in every pytest run: it imports nothing.
"""

from __future__ import annotations

from collections.abc import Callable


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a positive whole number of replicates, got {text!r}"
        raise ValueError(msg)
    return value


def plan_effect(text: str) -> tuple[float, bool]:
    relative = text.endswith("%")
    try:
        value = float(text[:-1] if relative else text)
    except ValueError:
        value = 0.0
    if value == 0:
        msg = f"expected an effect such as 0.5 (absolute) or 5% (of the baseline), got {text!r}"
        raise ValueError(msg)
    return (value / 100 if relative else value), relative


def sequential(text: str) -> str | int:
    """``off`` (every experiment runs its full design) or a number of looks, 2 or more."""
    if text.strip() == "off":
        return "off"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        msg = f"expected off or a number of looks, 2 or more (such as 4), got {text!r}"
        raise ValueError(msg)
    return value


def real(name: str, check: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """A parser of a number that ``check`` accepts (NaN never is), else ``expected`` is said."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not check(value):
            msg = f"{expected}, got {text!r}"
            raise ValueError(msg)
        return value

    parse.__name__ = name
    return parse


megabytes = real("megabytes", lambda v: v > 0, "must be a positive number of megabytes")
alpha = real(
    "alpha", lambda v: 0 < v < 1, "expected a significance level between 0 and 1, such as 0.05"
)
seconds = real(
    "seconds",
    lambda v: 0 <= v < float("inf"),
    "expected a number of seconds, 0 or more (0 turns it off)",
)


def shard(text: str) -> tuple[int, int]:
    """``K/N``: the K-th of N shards, 1 <= K <= N."""
    index, slash, count = text.strip().partition("/")
    try:
        k, n = int(index), int(count)
    except ValueError:
        k = n = 0
    if not slash or not 1 <= k <= n:
        msg = f"expected K/N, the K-th of N shards with 1 <= K <= N (such as 2/3), got {text!r}"
        raise ValueError(msg)
    return k, n


def dask_address(text: str) -> str:
    """A Dask scheduler address such as ``tcp://host:8786``."""
    from .._engine.dask import check_address  # deferred: only when the option is given

    return check_address(text)


def shard_report(text: str) -> str:
    """The path (or a glob) of a shard's JSON report."""
    if not text.strip().endswith(".json"):
        msg = (
            f"expected the path (or a glob) of a shard's JSON report, ending in .json, got {text!r}"
        )
        raise ValueError(msg)
    return text
