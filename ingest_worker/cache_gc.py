"""Embedding-cache garbage collection: vectors no live chunk uses, unused for a grace period,
are removed in small batches, so the cache tracks the index instead of every text it ever
held.

Never racing a writer: a vector released (its last chunk deleted) within the grace period is
kept, so re-saving a file soon after an edit still embeds nothing. Each batch first locks its
candidates (skipping rows a writer has pinned), then deletes them in a second statement whose
fresh snapshot sees every chunk committed meanwhile; a writer that pins a row the collector
holds waits, and puts the vector back if it was removed (`embedding_cache.pin`). Only the
index's active model is collected (a reindex builds the next model's vectors beside it).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

from ingest_worker import reindex
from ingest_worker.database import connect
from ingest_worker.errors import Retryable

log = logging.getLogger(__name__)

_CANDIDATES = """
    SELECT e.chunk_hash FROM embedding_cache e
    WHERE e.model = %(model)s AND e.chunk_hash > %(after)s
      AND e.created_at < now() - %(grace)s * interval '1 second'
    ORDER BY e.chunk_hash LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED"""
# A fresh snapshot, after the candidates are locked: sees chunks committed meanwhile.
_DELETE_UNUSED = """
    DELETE FROM embedding_cache e
    WHERE e.model = %(model)s AND e.chunk_hash = ANY(%(page)s)
      AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.chunk_hash = e.chunk_hash)
      AND NOT EXISTS (SELECT 1 FROM cache_releases r WHERE r.chunk_hash = e.chunk_hash
                      AND r.released_at >= now() - %(grace)s * interval '1 second')"""


def collect(conn: psycopg.Connection[Any], model: str, grace_s: float, batch: int = 500) -> int:
    """One pass over the cache of `model`, `batch` rows per transaction; returns how many
    vectors were removed."""
    removed, after = 0, b""
    params: dict[str, Any] = {"model": model, "grace": grace_s, "batch": batch}
    while True:
        with conn.transaction():
            page = [bytes(h) for (h,) in conn.execute(_CANDIDATES, {**params, "after": after})]
            if page:
                removed += conn.execute(_DELETE_UNUSED, {**params, "page": page}).rowcount
        if len(page) < batch:
            break
        after = page[-1]
    conn.execute(
        "DELETE FROM cache_releases WHERE released_at < now() - %s * interval '1 second'",
        (grace_s,),
    )
    return removed


class CacheCollector:
    """Runs `collect` for the index's active model every `interval_s` on its own connection,
    riding out a database that is away."""

    def __init__(self, url: str, grace_s: float, interval_s: float) -> None:
        self.url = url
        self.grace_s = grace_s
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cache-gc", daemon=True)

    def start(self) -> CacheCollector:
        self.thread.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self.stop.wait(self.interval_s):
            try:
                conn = conn if conn is not None and not conn.closed else connect(self.url)
                model = reindex.active_model(conn)
                if model is not None and (removed := collect(conn, model, self.grace_s)):
                    log.info("embedding cache: removed %d unused vectors", removed)
            except (psycopg.Error, Retryable) as e:
                log.warning("embedding cache collection failed (%s); trying again later", e)
                if conn is not None:
                    conn.close()
        if conn is not None:
            conn.close()
