"""The commit protocol of DESIGN.md, over Postgres+pgvector.

`apply`, the one job of this module: one short transaction per document version that
re-checks the version under a row lock, writes the document row (a tombstone for deletes),
deletes removed chunks, renumbers kept ones, inserts new ones, records the source position and
notifies listeners. Vectors are computed before it is called: never inside a transaction.
Around it, the reads the pipeline needs first (stored versions and chunk hashes) and the
other writes that record source positions (stale events, dead letters).

Inside its transactions, `change_log` records source positions and the change feed. Beside
it, other modules write their own tables: `reindex` (the index's model and its vector
column), `embedding_cache`, `dead_letters`, `counters`, `sources.kafka.resume` (where a Kafka
worker resumes) and `api_keys`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest_worker import change_log, dead_letters, embedding_cache
from ingest_worker.chunking import Chunk
from ingest_worker.counters import bump
from ingest_worker.diffing import StoredChunk, plan
from ingest_worker.embedding import Vector
from ingest_worker.events import DocumentEvent, Op, Outcome, SourcePosition

log = logging.getLogger(__name__)

DocKey = tuple[str, str]  # (tenant, doc_id)


@dataclass(frozen=True, slots=True)
class StoredDocument:
    version: int
    deleted: bool
    content_hash: bytes | None
    fingerprint: str | None
    chunk_hashes: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class DocumentChange:
    """A document version ready to commit: parsed, chunked, with vectors for new chunks."""

    event: DocumentEvent
    content_hash: bytes | None = None
    title: str | None = None
    chunks: tuple[Chunk, ...] | None = None  # None: delete, or content known unchanged
    embedded: int = 0  # chunks of this version that called the model


class MissingVectors(Exception):
    """The stored state moved under us and a chunk needs a vector that was not computed."""

    def __init__(self, hashes: set[bytes]) -> None:
        super().__init__(f"{len(hashes)} chunk vectors are missing")
        self.hashes = hashes


class ModelSwitched(Exception):
    """`freshindex reindex` switched the index to another model since this process started."""

    def __init__(self, model: str) -> None:
        super().__init__(f"the index now uses model {model}")
        self.model = model


class Store:
    """Writes and reads the index through one connection (autocommit between transactions)."""

    def __init__(self, conn: psycopg.Connection[Any], model: str) -> None:
        self.conn = conn  # autocommit: every write below opens its own transaction
        self.model = model

    def reconnect(self) -> None:
        """Replace a broken connection (the server restarted); raises `Retryable` if the
        server is still away."""
        from psycopg.conninfo import make_conninfo

        from ingest_worker.database import connect

        info = self.conn.info
        url = make_conninfo(info.dsn, password=info.password) if info.password else info.dsn
        with contextlib.suppress(psycopg.Error):
            self.conn.close()
        self.conn = connect(url)

    # -- reads before embedding ----------------------------------------------------------------

    def load_states(self, keys: Iterable[DocKey]) -> dict[DocKey, StoredDocument]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        rows = self.conn.execute(
            """SELECT d.tenant, d.doc_id, d.version, d.deleted, d.content_hash, d.fingerprint,
                      coalesce(array_agg(c.chunk_hash) FILTER (WHERE c.id IS NOT NULL), '{}')
               FROM documents d
               JOIN unnest(%s::text[], %s::text[]) AS k(tenant, doc_id) USING (tenant, doc_id)
               LEFT JOIN chunks c USING (tenant, doc_id)
               GROUP BY d.tenant, d.doc_id""",
            ([t for t, _ in keys], [d for _, d in keys]),
        ).fetchall()
        return {(r[0], r[1]): StoredDocument(r[2], r[3], r[4], r[5], frozenset(r[6])) for r in rows}

    # -- the commit protocol -------------------------------------------------------------------

    def apply(
        self,
        change: DocumentChange,
        vectors: Mapping[bytes, Vector],
        positions: Sequence[SourcePosition] = (),
    ) -> Outcome:
        """Commit one document version and the source positions it completes (see the
        module docstring)."""
        event = change.event
        with self.conn.transaction(), self.conn.cursor() as cur:
            # FOR SHARE: a model switch (which locks the row FOR UPDATE) waits for us, and
            # we never write vectors of a model the index no longer uses.
            active = cur.execute("SELECT model FROM active_model FOR SHARE").fetchone()
            if active is not None and active[0] != self.model:
                raise ModelSwitched(active[0])
            change_log.record_positions(cur, positions, event.event_time)
            stored = _lock_document(cur, event)
            if stored is not None and event.version is not None and event.version <= stored[0]:
                bump(cur, events_stale_total=1)
                return Outcome.STALE
            version = (
                event.version if event.version is not None else (stored[0] + 1 if stored else 1)
            )
            rows = [
                StoredChunk(i, o, bytes(h))
                for i, o, h in cur.execute(
                    "SELECT id, ordinal, chunk_hash FROM chunks WHERE tenant = %s AND doc_id = %s",
                    (event.tenant, event.doc_id),
                )
            ]
            if event.op is Op.DELETE:
                cur.execute(
                    "DELETE FROM chunks WHERE tenant = %s AND doc_id = %s",
                    (event.tenant, event.doc_id),
                )
                embedding_cache.release(cur, (r.hash for r in rows))
                chunk_count, outcome = 0, Outcome.APPLIED
            elif change.chunks is None:  # content unchanged: only the version moves
                chunk_count, outcome = len(rows), Outcome.UNCHANGED
                bump(cur, chunks_reused_total=len(rows))
            else:
                chunk_count = len(change.chunks)
                outcome = _write_chunks(cur, event, change.chunks, rows, vectors, self.model)
                bump(cur, chunks_reused_total=max(0, chunk_count - change.embedded))
            _write_document(cur, change, version, chunk_count)
            if resolved := dead_letters.resolve(cur, event, version):
                log.info("%s v%d resolves %d dead letter(s)", event.doc_id, version, resolved)
            bump(cur, events_applied_total=1)
            change_log.record_change(cur, event, version)
        return outcome

    def record_stale(self, count: int = 1) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            bump(cur, events_stale_total=count)

    def record_dead_letter(
        self, event: DocumentEvent, error: Exception, positions: Sequence[SourcePosition] = ()
    ) -> None:
        """Store a dead letter and the source positions it completes, in one transaction."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            change_log.record_positions(cur, positions, event.event_time)
            dead_letters.insert(cur, event, error)
        log.warning("dead letter: %s (%s): %s", event.doc_id, type(error).__name__, error)

    # -- what sources resume from ------------------------------------------------------------

    def applied_positions(self, source: str) -> dict[int, int]:
        return change_log.applied_positions(self.conn, source)

    def live_documents(self, source: str) -> dict[str, str | None]:
        """doc_id → fingerprint of the documents a source has indexed and not deleted."""
        rows = self.conn.execute(
            "SELECT doc_id, fingerprint FROM documents WHERE source = %s AND NOT deleted",
            (source,),
        ).fetchall()
        return {r[0]: r[1] for r in rows}


def _lock_document(cur: psycopg.Cursor[Any], event: DocumentEvent) -> tuple[int, bool] | None:
    """Lock the document row (creating a placeholder if new); the stored (version, deleted)."""
    inserted = cur.execute(
        """INSERT INTO documents (tenant, doc_id, version, deleted, source)
           VALUES (%s, %s, -1, true, %s) ON CONFLICT DO NOTHING RETURNING 1""",
        (event.tenant, event.doc_id, event.source),
    ).fetchone()
    if inserted:
        return None
    row = cur.execute(
        "SELECT version, deleted FROM documents WHERE tenant = %s AND doc_id = %s FOR UPDATE",
        (event.tenant, event.doc_id),
    ).fetchone()
    assert row is not None
    return int(row[0]), bool(row[1])


def _write_chunks(
    cur: psycopg.Cursor[Any],
    event: DocumentEvent,
    chunks: Sequence[Chunk],
    rows: Sequence[StoredChunk],
    vectors: Mapping[bytes, Vector],
    model: str,
) -> Outcome:
    chunk_plan = plan(chunks, rows)
    missing = {c.hash for c in chunk_plan.insert if c.hash not in vectors}
    found = dict(vectors)
    if missing:  # the stored rows moved since planning: the cache may still have them
        found.update(embedding_cache.lookup(cur, model, missing))
        if still_missing := missing - found.keys():
            raise MissingVectors(still_missing)
    if chunk_plan.delete:
        cur.execute("DELETE FROM chunks WHERE id = ANY(%s)", (list(chunk_plan.delete),))
        deleted = set(chunk_plan.delete)
        embedding_cache.release(cur, (r.hash for r in rows if r.id in deleted))
    embedding_cache.pin(cur, model, {c.hash: found[c.hash] for c in chunk_plan.insert})
    if chunk_plan.renumber:
        ids, ordinals = zip(*chunk_plan.renumber, strict=True)
        cur.execute(
            """UPDATE chunks SET ordinal = v.ordinal
               FROM unnest(%s::bigint[], %s::int[]) AS v(id, ordinal) WHERE chunks.id = v.id""",
            (list(ids), list(ordinals)),
        )
    if chunk_plan.insert:
        cur.executemany(
            """INSERT INTO chunks (tenant, doc_id, ordinal, chunk_hash, heading, text, embedding)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            [
                (
                    event.tenant,
                    event.doc_id,
                    c.ordinal,
                    c.hash,
                    c.context,  # exactly what the model saw: a reindex rebuilds the text
                    c.text,
                    found[c.hash],
                )
                for c in chunk_plan.insert
            ],
        )
    return Outcome.UNCHANGED if chunk_plan.is_noop else Outcome.APPLIED


def _write_document(
    cur: psycopg.Cursor[Any], change: DocumentChange, version: int, chunk_count: int
) -> None:
    event = change.event
    deleted = event.op is Op.DELETE
    cur.execute(
        """UPDATE documents SET
               version = %(version)s, deleted = %(deleted)s,
               content_hash = CASE WHEN %(deleted)s THEN NULL
                                   ELSE coalesce(%(content_hash)s, content_hash) END,
               title = CASE WHEN %(deleted)s THEN NULL ELSE coalesce(%(title)s, title) END,
               metadata = %(metadata)s, source = %(source)s, fingerprint = %(fingerprint)s,
               event_time = %(event_time)s, indexed_at = clock_timestamp(),
               chunk_count = %(chunk_count)s
           WHERE tenant = %(tenant)s AND doc_id = %(doc_id)s""",
        {
            "version": version,
            "deleted": deleted,
            "content_hash": change.content_hash,
            "title": event.title or change.title,
            "metadata": Jsonb(dict(event.metadata)),
            "source": event.source,
            "fingerprint": event.fingerprint,
            "event_time": event.event_time,
            "chunk_count": chunk_count,
            "tenant": event.tenant,
            "doc_id": event.doc_id,
        },
    )
