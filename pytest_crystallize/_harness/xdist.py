"""Hooks that exist only under pytest-xdist; registered only when xdist is installed."""

from __future__ import annotations

from typing import Any

import pytest

from .collect import ARTIFACT_SESSION_KEY, WORKERS_KEY, artifact_session, worker_count
from .looks import prepare_looks

# Chunks are sent to a worker this many at a time (xdist's own floor: a worker needs its
# next item before it runs the current one).
CHUNKS_AHEAD = 3


class XdistHooks:
    """Sends the controller's worker count to every worker, so all collect one chunk layout,
    and its artifact session, so all write one artifact version; under ``--dist load``
    (``-n`` alone), hands out experiment chunks in collection order (:func:`look_ordered`).

    A worker restarted after a crash receives the same value, so its collection matches.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERS_KEY] = worker_count(self.config)
        node.workerinput[ARTIFACT_SESSION_KEY] = artifact_session(self.config)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        prepare_looks(self.config)  # the controller, while its workers start

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") != "load" or config.getoption("maxschedchunk", None) is not None:
            return None  # another distribution, or the user's own chunk size: theirs
        return look_ordered(config, log)


def look_ordered(config: pytest.Config, log: Any) -> Any:
    """xdist's load scheduling, except that a worker holds at most :data:`CHUNKS_AHEAD`
    experiment chunks, sent in collection order.

    Left alone, xdist hands a worker up to a quarter of the remaining items at once, so one
    worker may run an experiment's look 3 while the other still runs its look 2, before
    the look-2 decision could spare it. Chunks are few and long (a few per worker and
    look), so sending them one at a time costs little, and the runs follow the selection's
    order (every look 1 before any look 2). A worker is refilled as each chunk ends (xdist
    waits while a worker with two items runs long ones), so it always holds one chunk
    beyond the next and keeps running while the controller judges a look. Other tests are
    sent as xdist sends them.
    """
    from xdist.scheduler import LoadScheduling  # deferred: only under xdist's controller

    class LookOrderedScheduling(LoadScheduling):  # type: ignore[misc]
        def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
            if "::chunk-" in self.collection[item_index]:
                duration = 0  # xdist stops refilling a worker on long items: chunks are
            super().mark_test_complete(node, item_index, duration)

        def _send_tests(self, node: Any, num: int) -> None:
            if self.pending and "::chunk-" in self.collection[self.pending[0]]:
                num = min(num, max(1, CHUNKS_AHEAD - len(self.node2pending[node])))
            super()._send_tests(node, num)

    return LookOrderedScheduling(config, log)
