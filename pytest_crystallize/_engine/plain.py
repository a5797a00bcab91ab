"""Plain data: what JSON reports, artifacts and workers' results carry."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def plain(value: Any, *, finite: bool = False) -> Any:
    """``value`` as plain data (numbers, str, lists, dicts); ``finite`` makes NaN/inf ``None``
    (JSON's null), so the data can be written as strict JSON.

    numpy scalars and arrays become Python numbers and lists, result objects their
    ``as_dict()``, anything else its ``repr``.
    """
    if isinstance(value, Mapping):
        return {str(k): plain(v, finite=finite) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, finite=finite) for v in value]
    if isinstance(value, float) and finite and not math.isfinite(value):
        return None
    if type(value) in (str, int, float, bool) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    for method in ("tolist", "as_dict"):  # numpy scalars and arrays, result objects
        convert = getattr(value, method, None)
        if callable(convert):
            return plain(convert(), finite=finite)
    for kind in (bool, int, float, str):  # subclasses such as IntEnum travel as the base
        if isinstance(value, kind):
            return kind(value)
    return repr(value)
