"""The embedding cache: model + chunk hash → vector, so that a chunk text is embedded at most
once per model, across documents and versions (DESIGN's "no wasted embeddings").

Every live chunk's vector stays in the cache: a writer `pin`s the vectors of the chunks it
inserts (inside its commit transaction) and `release`s the hashes of the chunks it deletes;
`cache_gc` removes vectors unused for a grace period.
"""

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


def pin(cur: psycopg.Cursor[Any], model: str, vectors: Mapping[bytes, Vector]) -> None:
    """Inside a commit transaction that inserts chunks with these vectors: lock their cache
    rows so that the collector skips them until commit, and put back any it removed."""
    if not vectors:
        return
    present = {
        bytes(h)
        for (h,) in cur.execute(
            "SELECT chunk_hash FROM embedding_cache WHERE model = %s AND chunk_hash = ANY(%s) "
            "FOR KEY SHARE",
            (model, list(vectors)),
        )
    }
    if gone := [(model, h, v) for h, v in vectors.items() if h not in present]:
        cur.executemany(
            "INSERT INTO embedding_cache (model, chunk_hash, embedding) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            gone,
        )


def release(cur: psycopg.Cursor[Any], hashes: Iterable[bytes]) -> None:
    """Inside a commit transaction that deletes chunks: their vectors' grace period starts."""
    if hashes := list(dict.fromkeys(hashes)):
        cur.execute("INSERT INTO cache_releases (chunk_hash) SELECT unnest(%s::bytea[])", (hashes,))
