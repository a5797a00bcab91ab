"""The one check of user-chosen names: experiments, treatments, hypotheses, steps, metrics,
artifacts.

Names become pytest node ids (``file::experiment[treatment]``), report keys and folder names
on disk, so a name may not contain ``::``, ``[``, ``]``, ``/``, ``\\`` or a line break, may not
be empty and may not start with ``.`` (``..`` would leave the data folder). The error names
the kind of object, echoes the name, names the offending character and, when the name is
checked while the user's code is calling in, the file and line of that call.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType

from .errors import CrystallizeError, CrystallizeUsageError

# Checked in this order, so ``a::b`` reports ``'::'`` rather than nothing useful.
_FORBIDDEN = ("::", "[", "]", "/", "\\", "\n", "\r")
_VALID: set[str] = set()  # names already checked: metrics are recorded in every run
_KEEP_VALID = 4096
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)
ALLOWED = "may not be empty, start with '.', or contain '::', '[', ']', '/', '\\' or a line break"


def name_problem(name: object) -> str | None:
    """What is wrong with ``name`` as a name (``None``: nothing)."""
    if not isinstance(name, str):
        return f"is of type {type(name).__name__}, not str"
    if not name:
        return "is empty"
    if name.startswith("."):
        return "starts with '.'"
    for bad in _FORBIDDEN:
        if bad in name:
            return f"contains {bad!r}"
    return None


def user_frame() -> tuple[str, int] | None:
    """``(file, line)`` of the innermost frame outside pytest-crystallize, if there is one."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and not filename.startswith("<frozen"):
            return filename, frame.f_lineno
        frame = frame.f_back
    return None


def user_location() -> str | None:
    """``"file:line"`` of the innermost frame outside pytest-crystallize, if there is one."""
    where = user_frame()
    return None if where is None else f"{where[0]}:{where[1]}"


def check_name(
    kind: str,
    name: object,
    *,
    owner: str = "",
    error: type[CrystallizeError] = CrystallizeUsageError,
    locate: bool = True,
) -> str:
    """Return ``name`` if it is a valid name of a ``kind``; else raise ``error`` saying why.

    ``owner`` (such as ``"experiment 'demo': "``) prefixes the message; with ``locate`` it
    ends with the file and line of the user's call that led here.
    """
    if name in _VALID:
        return str(name)
    problem = name_problem(name)
    if problem is None:
        if len(_VALID) < _KEEP_VALID:
            _VALID.add(str(name))
        return str(name)
    where = user_location() if locate else None
    article = "an" if kind[0] in "aeiou" else "a"
    msg = (
        f"{owner}{article} {kind} name {ALLOWED} (names become test ids and folder names), "
        f"got {name!r}, which {problem}; rename it" + (f" (at {where})" if where else "")
    )
    raise error(msg)
