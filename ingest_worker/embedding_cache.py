"""The embedding cache: model + chunk hash → vector, so that a chunk text is embedded at most
once per model, across documents and versions (DESIGN's "no wasted embeddings")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

from ingest_worker.counters import bump
from ingest_worker.embedding import Vector


def lookup(
    db: psycopg.Connection[Any] | psycopg.Cursor[Any], model: str, hashes: Iterable[bytes]
) -> dict[bytes, Vector]:
    """The cached vectors of `model` among `hashes` (on a connection, or inside a caller's
    transaction on its cursor)."""
    hashes = list(hashes)
    if not hashes:
        return {}
    rows = db.execute(
        "SELECT chunk_hash, embedding FROM embedding_cache "
        "WHERE model = %s AND chunk_hash = ANY(%s)",
        (model, hashes),
    ).fetchall()
    return {bytes(h): v for h, v in rows}


def keep(conn: psycopg.Connection[Any], vectors: Mapping[bytes, Vector], model: str) -> None:
    """Keep freshly computed vectors (committed at once: never embedded twice)."""
    if not vectors:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO embedding_cache (model, chunk_hash, embedding) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [(model, h, v) for h, v in vectors.items()],
        )
        bump(cur, chunks_embedded_total=len(vectors))
