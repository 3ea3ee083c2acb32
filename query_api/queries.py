"""The SQL of the read path. Every value is a bound parameter; filters compose with
`psycopg.sql`, never with string formatting."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest_worker import delete_guard
from ingest_worker.sources.kafka.events import source_name
from query_api.models import SearchFilter, WaitForDocument, WaitForPosition

_COUNTERS = (
    "chunks_embedded_total",
    "chunks_reused_total",
    "events_applied_total",
    "events_stale_total",
)

Ranked = dict[str, Any]  # one chunk of a ranking: its id, its document and its score

# A ranking returns chunk ids and scores only; the few hits shown are read afterwards, in
# the same snapshot (`hits`), so going deeper into a ranking costs no text transfer.
_HIT_FIELDS = """SELECT c.id, c.doc_id, c.ordinal, c.text, c.heading, d.title, d.metadata,
                        d.version, d.indexed_at
                 FROM chunks c JOIN documents d USING (tenant, doc_id)
                 WHERE c.id = ANY(%(ids)s)"""


def filters(where: SearchFilter, required: str = "") -> tuple[list[sql.Composable], dict[str, Any]]:
    conditions: list[sql.Composable] = [sql.SQL("c.tenant = %(tenant)s")]
    params: dict[str, Any] = {"tenant": where.tenant, "required": required}
    if required:
        conditions.append(sql.SQL("c.tsv @@ websearch_to_tsquery('english', %(required)s)"))
    if where.metadata:
        conditions.append(
            sql.SQL(
                "EXISTS (SELECT FROM documents d WHERE d.tenant = c.tenant "
                "AND d.doc_id = c.doc_id AND d.metadata @> %(metadata)s)"
            )
        )
        params["metadata"] = Jsonb(where.metadata)
    if where.doc_id_prefix:
        conditions.append(sql.SQL("starts_with(c.doc_id, %(prefix)s)"))
        params["prefix"] = where.doc_id_prefix
    return conditions, params


HNSW_EF_SEARCH = 40  # pgvector's default candidate list size
MAX_DEPTH = 1000  # the most rows one ranking returns (pgvector's ef_search limit)


def vector_search(
    conn: psycopg.Connection[Any],
    vector: np.ndarray[Any, Any],
    k: int,
    where: SearchFilter,
    required: str = "",
) -> list[Ranked]:
    """The k chunks nearest to `vector` that pass the filter (and match `required`, in
    web-search syntax, when given); score = cosine similarity."""
    conditions, params = filters(where, required)
    query = sql.SQL(
        """SELECT c.id, c.doc_id, 1 - (c.embedding <=> %(vector)s) AS score FROM chunks c
           WHERE {conditions} ORDER BY c.embedding <=> %(vector)s LIMIT %(k)s"""
    ).format(conditions=sql.SQL(" AND ").join(conditions))
    with _transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        if len(conditions) > 1 and _has_iterative_scan(conn):
            # Keep scanning the HNSW graph until k rows pass the filter (pgvector >= 0.8);
            # without it a selective filter returns fewer than k hits.
            cur.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        if k > HNSW_EF_SEARCH:
            # An HNSW scan yields at most ef_search rows: ask for as many as are wanted.
            cur.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(k)))
        return cur.execute(query, {**params, "vector": vector, "k": k}).fetchall()


def _transaction(conn: psycopg.Connection[Any]) -> contextlib.AbstractContextManager[Any]:
    """The caller's transaction if one is open (no savepoint round trips), else a new one."""
    return contextlib.nullcontext() if in_transaction(conn) else conn.transaction()


def in_transaction(conn: psycopg.Connection[Any]) -> bool:
    return conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS


def hits(conn: psycopg.Connection[Any], ranked: Sequence[Ranked]) -> list[dict[str, Any]]:
    """The ranked chunks with what a hit shows, in ranking order, with their scores (read
    in the ranking's snapshot: every ranked chunk is there)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_HIT_FIELDS, {"ids": [r["id"] for r in ranked]}).fetchall()
    by_id = {row.pop("id"): row for row in rows}
    return [{**by_id[r["id"]], "score": r["score"]} for r in ranked]


def _has_iterative_scan(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT string_to_array(extversion, '.')::int[] >= '{0,8}' FROM pg_extension "
        "WHERE extname = 'vector'"
    ).fetchone()
    return bool(row and row[0])


def freshness(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """When this was read, the last committed change, and every source's position."""
    row = conn.execute(
        """SELECT clock_timestamp(), max(indexed_at),
                  extract(epoch FROM clock_timestamp() - max(indexed_at)) * 1000
           FROM (SELECT indexed_at FROM changes ORDER BY id DESC LIMIT 1) last"""
    ).fetchone()
    assert row is not None
    with conn.cursor(row_factory=dict_row) as cur:
        sources = cur.execute(
            "SELECT source, partition, position, event_time, updated_at FROM source_positions "
            "ORDER BY source, partition"
        ).fetchall()
    return {
        "as_of": row[0],
        "last_change_at": row[1],
        "last_change_age_ms": float(row[2]) if row[2] is not None else None,
        "sources": sources,
    }


def missing(
    conn: psycopg.Connection[Any], wait_for: Sequence[WaitForDocument | WaitForPosition]
) -> list[WaitForDocument | WaitForPosition]:
    """The awaited versions and positions the index has not applied yet."""
    documents = [w for w in wait_for if isinstance(w, WaitForDocument)]
    positions = [w for w in wait_for if isinstance(w, WaitForPosition)]
    done: set[int] = set()
    if documents:
        rows = conn.execute(
            """SELECT w.i FROM unnest(%s::int[], %s::text[], %s::text[], %s::bigint[])
                   AS w(i, tenant, doc_id, version)
               JOIN documents d ON d.tenant = w.tenant AND d.doc_id = w.doc_id
                                AND d.version >= w.version""",
            (
                list(range(len(documents))),
                [w.tenant for w in documents],
                [w.doc_id for w in documents],
                [w.version for w in documents],
            ),
        ).fetchall()
        done |= {id(documents[r[0]]) for r in rows}
    if positions:
        rows = conn.execute(
            """SELECT w.i FROM unnest(%s::int[], %s::text[], %s::int[], %s::bigint[])
                   AS w(i, source, partition, position)
               JOIN source_positions p ON p.source = w.source AND p.partition = w.partition
                                      AND p.position >= w.position""",
            (
                list(range(len(positions))),
                [source_name(w.topic) for w in positions],
                [w.partition for w in positions],
                [w.offset for w in positions],
            ),
        ).fetchall()
        done |= {id(positions[r[0]]) for r in rows}
    return [w for w in wait_for if id(w) not in done]


def changes_after(
    conn: psycopg.Connection[Any], tenant: str, after_id: int, limit: int = 1000
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT id, tenant, doc_id, version, op, indexed_at FROM changes
               WHERE tenant = %s AND id > %s ORDER BY id LIMIT %s""",
            (tenant, after_id, limit),
        ).fetchall()


def last_change_id(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM changes").fetchone()
    return int(row[0]) if row else 0


def document(conn: psycopg.Connection[Any], tenant: str, doc_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT doc_id, tenant, version, title, chunk_count, metadata, indexed_at
               FROM documents WHERE tenant = %s AND doc_id = %s AND NOT deleted""",
            (tenant, doc_id),
        ).fetchone()


def stats(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(
        """SELECT (SELECT count(*) FROM documents WHERE NOT deleted),
                  (SELECT count(*) FROM chunks),
                  (SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL),
                  (SELECT indexed_at FROM changes ORDER BY id DESC LIMIT 1),
                  (SELECT model FROM active_model),
                  (SELECT count(*) FROM embedding_cache)"""
    ).fetchone()
    assert row is not None
    counters = dict(
        conn.execute(
            "SELECT name, value FROM counters WHERE name = ANY(%s)", (list(_COUNTERS),)
        ).fetchall()
    )
    with conn.cursor(row_factory=dict_row) as cur:
        positions = cur.execute(
            "SELECT source, partition, position, updated_at FROM source_positions "
            "ORDER BY source, partition"
        ).fetchall()
    return {
        "sources": positions,
        "documents": row[0],
        "chunks": row[1],
        "dead_letters": row[2],
        "last_change_at": row[3],
        "model": row[4],
        "embedding_cache": row[5],
        "deletes_held": delete_guard.open_holds(conn),
        **{name: int(counters.get(name, 0)) for name in _COUNTERS},
    }
