"""Type variables of the generic factories and components, with defaults (PEP 696).

Type checkers see the defaults, so a bare ``StepFactory`` or ``VerifierFactory`` in an
annotation means ``StepFactory[Any, ..., Any]`` (any data, any keywords, any result). At run
time ``typing`` takes no ``default`` before Python 3.13, so the run-time objects have none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import ParamSpec, TypeVar

    Data = TypeVar("Data", default=Any)  # what a step takes as its data
    Params = ParamSpec("Params", default=...)  # the keyword parameters a factory binds
    Out = TypeVar("Out", default=Any)  # what a step, data source or verifier returns
else:
    from typing import ParamSpec, TypeVar

    Data = TypeVar("Data")
    Params = ParamSpec("Params")
    Out = TypeVar("Out")
