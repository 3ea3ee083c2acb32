"""The SQL of the read path. Every value is a bound parameter; filters compose with
`psycopg.sql`, never with string formatting."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from query_api.models import Freshness, SearchFilter

_COUNTERS = (
    "chunks_embedded_total",
    "chunks_reused_total",
    "events_applied_total",
    "events_stale_total",
)


def search(
    conn: psycopg.Connection[Any], vector: np.ndarray[Any, Any], k: int, where: SearchFilter
) -> list[dict[str, Any]]:
    """The k chunks nearest to `vector` that pass the filter, best first."""
    conditions = [sql.SQL("c.tenant = %(tenant)s")]
    params: dict[str, Any] = {"tenant": where.tenant, "vector": vector, "k": k}
    if where.metadata:
        conditions.append(sql.SQL("d.metadata @> %(metadata)s"))
        params["metadata"] = Jsonb(where.metadata)
    if where.doc_id_prefix:
        conditions.append(sql.SQL("starts_with(c.doc_id, %(prefix)s)"))
        params["prefix"] = where.doc_id_prefix
    query = sql.SQL(
        """SELECT c.doc_id, c.ordinal, c.text, c.heading, d.title,
                  1 - (c.embedding <=> %(vector)s) AS score,
                  d.metadata, d.version, d.indexed_at
           FROM chunks c JOIN documents d USING (tenant, doc_id)
           WHERE {conditions}
           ORDER BY c.embedding <=> %(vector)s
           LIMIT %(k)s"""
    ).format(conditions=sql.SQL(" AND ").join(conditions))
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        if len(conditions) > 1 and _has_iterative_scan(conn):
            # Keep scanning the HNSW graph until k rows pass the filter (pgvector >= 0.8);
            # without it a selective filter returns fewer than k hits.
            cur.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        return cur.execute(query, params).fetchall()


def _has_iterative_scan(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT string_to_array(extversion, '.')::int[] >= '{0,8}' FROM pg_extension "
        "WHERE extname = 'vector'"
    ).fetchone()
    return bool(row and row[0])


def freshness(conn: psycopg.Connection[Any]) -> Freshness:
    row = conn.execute(
        """SELECT clock_timestamp(), max(indexed_at),
                  extract(epoch FROM clock_timestamp() - max(indexed_at)) * 1000
           FROM documents"""
    ).fetchone()
    assert row is not None
    return Freshness(
        as_of=row[0],
        last_change_at=row[1],
        last_change_age_ms=float(row[2]) if row[2] is not None else None,
    )


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
                  (SELECT count(*) FROM dead_letters),
                  (SELECT max(indexed_at) FROM documents),
                  (SELECT model FROM active_model)"""
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
        **{name: int(counters.get(name, 0)) for name in _COUNTERS},
    }
