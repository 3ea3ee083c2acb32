"""Riding out a database that is away (restarting, failing over): retry with backoff until it
is back, so workers resume with no operator action and skip no event."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg

from ingest_worker.errors import Retryable

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT = (Retryable, psycopg.OperationalError, psycopg.InterfaceError)


def until_done(
    attempt: Callable[[], T],
    reconnect: Callable[[], None],
    stopping: threading.Event,
    what: str,
    max_delay_s: float = 10.0,
) -> T:
    """`attempt()` until it succeeds, waiting 0.5 s, doubling up to `max_delay_s`, between
    tries and reconnecting before each. Once `stopping` is set a failure is raised instead:
    the work was not done, and whoever runs next redoes it."""
    delay = 0.5
    while True:
        try:
            return attempt()
        except TRANSIENT as e:
            if stopping.is_set():
                raise
            log.warning(
                "%s failed (%s); the database may be away, retrying in %.1fs", what, e, delay
            )
            stopping.wait(delay)
            delay = min(delay * 2, max_delay_s)
            with contextlib.suppress(*TRANSIENT):  # still away: the next attempt fails again
                reconnect()
