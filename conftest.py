"""Root conftest: enables pytester only; the plugin itself loads through its entry point."""

from __future__ import annotations

pytest_plugins = ["pytester"]
