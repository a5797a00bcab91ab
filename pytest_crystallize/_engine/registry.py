"""Data sources registered by name: ``@data_source("name")`` or :func:`register_datasource`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ExperimentDefinitionError

if TYPE_CHECKING:
    from .sources import DataSource

_REGISTRY: dict[str, DataSource] = {}


def register_datasource(name: str, source: DataSource) -> None:
    """Register ``source`` under ``name``; a name can be registered once."""
    if name in _REGISTRY:
        msg = f"a data source named {name!r} is already registered; unregister it first"
        raise ExperimentDefinitionError(msg)
    _REGISTRY[name] = source


def get_datasource(name: str) -> DataSource:
    """Return the registered data source ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        msg = f"no data source registered as {name!r}; registered: {known}"
        raise KeyError(msg) from None


def unregister_datasource(name: str) -> None:
    """Remove the data source registered as ``name``; an unknown name is ignored."""
    _REGISTRY.pop(name, None)


def list_datasources() -> list[str]:
    """The names of the registered data sources, sorted."""
    return sorted(_REGISTRY)


def clear_registry() -> None:
    """Unregister every data source."""
    _REGISTRY.clear()
