"""Hooks that exist only under pytest-xdist; registered only when xdist is installed."""

from __future__ import annotations

from typing import Any

import pytest

from .collect import ARTIFACT_SESSION_KEY, artifact_session
from .layout import WORKERS_KEY, worker_count
from .replay import MERGE_PATHS

# A worker holds this many chunks: the one it runs, the next (an xdist worker needs it before
# it runs the current one) and one more, so it keeps running while the controller judges.
CHUNKS_AHEAD = 3


class XdistHooks:
    """Sends the controller's worker count to every worker, so all collect one chunk layout,
    and its artifact session, so all write one artifact version, and the shard reports a
    merge replays (globs expanded once, by the controller); under ``--dist load``
    (``-n`` alone), hands out experiment chunks in collection order (:func:`look_ordered`).

    A worker restarted after a crash receives the same value, so its collection matches.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERS_KEY] = worker_count(self.config)
        node.workerinput[ARTIFACT_SESSION_KEY] = artifact_session(self.config)
        node.workerinput[MERGE_PATHS] = getattr(self.config.option, MERGE_PATHS, None)

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
    refills only below a quarter of a worker's share, and waits while a worker with two
    items runs long ones), so it holds one chunk beyond the next and keeps running while
    the controller judges a look; once every item is handed out, every worker is told so
    at once (as xdist does when its first batch holds everything), so none waits for the
    controller to run its last chunk. Other tests are sent as xdist sends them.
    """
    from xdist.scheduler import LoadScheduling  # deferred: only under xdist's controller

    class LookOrderedScheduling(LoadScheduling):  # type: ignore[misc]
        def _chunks_next(self) -> bool:
            return bool(self.pending) and "::chunk-" in self.collection[self.pending[0]]

        def check_schedule(self, node: Any, duration: float = 0) -> None:
            # xdist refills a worker only below a quarter of its share, and not while it
            # holds two long items: keep every worker at CHUNKS_AHEAD chunks instead.
            if node.shutting_down or not self._chunks_next():
                super().check_schedule(node, duration)
                return
            self._send_tests(node, CHUNKS_AHEAD - len(self.node2pending[node]))

        def _send_tests(self, node: Any, num: int) -> None:
            chunks = self._chunks_next()
            if chunks:
                num = max(0, min(num, CHUNKS_AHEAD - len(self.node2pending[node])))
            super()._send_tests(node, num)
            if chunks and not self.pending:  # all handed out: workers run their last now
                for each in self.nodes:
                    if not each.shutting_down:
                        each.shutdown()

    return LookOrderedScheduling(config, log)
