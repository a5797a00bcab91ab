"""Hooks that exist only under pytest-xdist; registered only when xdist is installed."""

from __future__ import annotations

from typing import Any

import pytest

from .collect import ARTIFACT_SESSION_KEY, WORKERS_KEY, artifact_session, worker_count


class XdistHooks:
    """Sends the controller's worker count to every worker, so all collect one chunk layout,
    and its artifact session, so all write one artifact version.

    A worker restarted after a crash receives the same value, so its collection matches.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERS_KEY] = worker_count(self.config)
        node.workerinput[ARTIFACT_SESSION_KEY] = artifact_session(self.config)
