"""Every public callable has a docstring: the names of ``pytest_crystallize.__all__`` and
``pytest_crystallize.stats.__all__``, and the public methods and properties of their classes.

A class's members are those its own classes in the package define (not those inherited from
builtins, pluggy or other libraries), and whose names do not start with ``_``. An override
without a docstring counts as documented when the package class it overrides documents the
member (``help()`` shows that docstring). The failure message lists every missing docstring.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Iterator

import pytest_crystallize
from pytest_crystallize import stats

PACKAGE = "pytest_crystallize"


def _in_package(obj: object) -> bool:
    return str(getattr(obj, "__module__", "") or "").startswith(PACKAGE)


def _documented(doc: object) -> bool:
    return isinstance(doc, str) and bool(doc.strip())


def _member_doc(attr: object) -> tuple[bool, object]:
    """Whether ``attr`` (a class ``__dict__`` value) is a method or property, and its doc."""
    if isinstance(attr, staticmethod | classmethod):
        attr = attr.__func__
    if isinstance(attr, property | functools.cached_property):
        return True, attr.__doc__
    if inspect.isfunction(attr):
        return True, attr.__doc__
    return False, None


def _inherited_doc(cls: type, owner: type, name: str) -> bool:
    """Whether a package class after ``owner`` in ``cls``'s MRO documents ``name``."""
    mro = cls.__mro__
    for base in mro[mro.index(owner) + 1 :]:
        if _in_package(base) and name in vars(base):
            is_member, doc = _member_doc(vars(base)[name])
            if is_member and _documented(doc):
                return True
    return False


def missing_in_class(cls: type) -> Iterator[str]:
    """The public methods and properties of ``cls`` (defined in the package) without a doc."""
    for owner in cls.__mro__:
        if not _in_package(owner):
            continue
        for name, attr in vars(owner).items():
            if name.startswith("_"):
                continue
            is_member, doc = _member_doc(attr)
            if is_member and not _documented(doc) and not _inherited_doc(cls, owner, name):
                yield f"{owner.__module__}.{owner.__qualname__}.{name}"


def missing_docstrings(namespace: types.ModuleType) -> Iterator[str]:
    """Every public object of ``namespace.__all__`` (and member of it) without a docstring."""
    for name in namespace.__all__:
        value = getattr(namespace, name)
        where = f"{namespace.__name__}.{name}"
        if isinstance(value, types.ModuleType):
            if not _documented(value.__doc__):
                yield where
            for function_name, function in vars(value).items():
                if (
                    not function_name.startswith("_")
                    and inspect.isfunction(function)
                    and function.__module__ == value.__name__
                    and not _documented(function.__doc__)
                ):
                    yield f"{value.__name__}.{function_name}"
        elif isinstance(value, type):
            if not _documented(value.__doc__):
                yield where
            yield from missing_in_class(value)
        elif callable(value) and not _documented(value.__doc__):
            yield where  # a function, or a callable object such as a verifier factory


def test_every_public_callable_method_and_property_has_a_docstring() -> None:
    missing = sorted(
        {
            *missing_docstrings(pytest_crystallize),
            *missing_docstrings(stats),
        }
    )
    assert missing == [], f"{len(missing)} public callables without a docstring:\n" + "\n".join(
        missing
    )


# --- the walk finds what it should -------------------------------------------------------


class _Base:
    """A documented base."""

    def hook(self) -> None:
        """Documented once, here."""

    def plain(self) -> None:
        pass


class _Sub(_Base, dict[str, int]):
    """A documented subclass."""

    def hook(self) -> None:  # inherits the base's docstring
        pass

    @property
    def size(self) -> int:
        return 0

    @classmethod
    def make(cls) -> _Sub:
        return cls()

    @staticmethod
    def helper() -> None:
        """Documented."""

    def _private(self) -> None:
        pass


def test_the_class_walk_reports_undocumented_members_and_accepts_inherited_docs() -> None:
    here = f"{__name__}"
    _Base.__module__ = _Sub.__module__ = PACKAGE + ".fake"  # as if defined in the package
    try:
        found = sorted(missing_in_class(_Sub))
    finally:
        _Base.__module__ = _Sub.__module__ = here
    assert found == [
        f"{PACKAGE}.fake._Base.plain",
        f"{PACKAGE}.fake._Sub.make",
        f"{PACKAGE}.fake._Sub.size",
    ]  # neither dict's methods nor _private nor the documented hook override
