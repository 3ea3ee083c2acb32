"""One LISTEN connection per API process: wakes read-your-writes waits and feeds the SSE
change feed. Nothing polls the database in a loop; a wait re-checks only when Postgres says
that something was committed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from ingest_worker.change_log import CHANGES_CHANNEL, POSITIONS_CHANNEL

log = logging.getLogger(__name__)


class ChangeListener:
    """`on_reconnect` runs in the listener's thread each time it is back after losing its
    connection: the database may have restarted, so other connections may be broken too."""

    def __init__(self, database_url: str, on_reconnect: Callable[[], None] = lambda: None) -> None:
        self._url = database_url
        self._on_reconnect = on_reconnect
        self._generation = 0
        self._changed = threading.Condition()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]]
        self._subscribers = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="change-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def generation(self) -> int:
        """Grows with every notification; read it *before* checking the database."""
        with self._changed:
            return self._generation

    def wait(self, after: int, timeout: float) -> None:
        """Until a notification newer than `after` arrives, or `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation > after, timeout=max(0.0, timeout))

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue of committed changes for the calling event loop (the SSE feed)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        with self._lock:
            self._subscribers.add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._subscribers = {s for s in self._subscribers if s[1] is not queue}

    def _run(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    for channel in (CHANGES_CHANNEL, POSITIONS_CHANNEL):
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    if lost:  # first, so that woken waiters find working connections
                        self._on_reconnect()
                        lost = False
                    self._bump()  # anything may have happened while we were not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._deliver(note.channel, note.payload)
            except psycopg.Error as e:
                log.warning("change listener lost its connection (%s); reconnecting", e)
                lost = True
                self._stop.wait(1.0)

    def _deliver(self, channel: str, payload: str) -> None:
        self._bump()
        if channel != CHANGES_CHANNEL:
            return
        change = json.loads(payload)
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # that client's loop is closing
                loop.call_soon_threadsafe(_offer, queue, change)

    def _bump(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()


def _offer(queue: asyncio.Queue[dict[str, Any]], change: dict[str, Any]) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # a stalled client loses events, not memory
        queue.put_nowait(change)
