"""The index's embedding model: set on first use, moved by `freshindex reindex --model M`.

First use (`activate`): give `chunks.embedding` the model's dimensions and its HNSW index, and
record the model; a worker or API with another model is refused from then on.

`freshindex reindex --model M` moves the index to another model without downtime:

1. Catch up: embed, with the new model, every chunk text the index holds that the new model
   has not seen (into the embedding cache, which is per model). Searches keep using the old
   vectors meanwhile, and workers keep indexing; the loop goes on until a batch comes out
   short (under a steady trickle of writes something is always missing).
2. Switch, in one transaction: lock the chunks against writers, embed what they added since
   the catch-up if it is at most a batch (else unlock and catch up again), copy the new
   vectors into the chunks (changing the column's dimensions if needed), rebuild the HNSW
   index, and record the new model.
   Workers and the API notice at their next commit or search and load the new model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from ingest_worker import embedding_cache
from ingest_worker.chunking import embed_text
from ingest_worker.embedding import Embedder
from ingest_worker.errors import ConfigurationError
from ingest_worker.store import Store

log = logging.getLogger(__name__)

MODEL_CHANNEL = "freshindex_model"
_ACTIVATION_LOCK = 0x66726574  # serialises activate (migrations use ...73)


def activate(conn: psycopg.Connection[Any], model: str, dimensions: int) -> None:
    """Give chunks.embedding its dimensions and HNSW index on first use; refuse a switch."""
    with conn.transaction():
        # Workers starting together on a new index: one activates, the others then see
        # its row (FOR UPDATE cannot lock a row that does not exist yet).
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ACTIVATION_LOCK,))
        row = conn.execute("SELECT model, dimensions FROM active_model FOR UPDATE").fetchone()
        if row is not None:
            if (row[0], row[1]) != (model, dimensions):
                raise ConfigurationError(
                    f"this index was built with model {row[0]} ({row[1]} dimensions), not "
                    f"{model}; set FRESHINDEX_MODEL={row[0]} or use a new data "
                    "directory / database"
                )
            return
        conn.execute("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")
        _type_vector_column(conn, dimensions)
        conn.execute(
            "INSERT INTO active_model (model, dimensions) VALUES (%s, %s)", (model, dimensions)
        )


def reindex(
    store: Store,
    new: Embedder,
    *,
    batch_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Catch up and switch; returns how many chunk texts were embedded with the new model.

    The catch-up ends at the first batch that is not full, not when nothing is missing: a
    steady trickle of writes leaves a few texts missing every time, and the switch embeds
    what came since (up to a batch) anyway. It cannot end while writers add a batch of
    texts in the time the new model embeds one."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    embedded = 0
    while True:
        batch = missing(store.conn, new.model_name, batch_size)
        if batch:
            embedded += _embed_into_cache(store.conn, new, batch)
            if on_progress:
                on_progress(embedded, count_missing(store.conn, new.model_name))
        if len(batch) == batch_size:
            continue
        switched = switch(store.conn, new, batch_size)
        if switched is not None:
            embedded += switched
            log.info("the index now uses %s (%d texts embedded)", new.model_name, embedded)
            return embedded


def _embed_into_cache(
    conn: psycopg.Connection[Any], new: Embedder, batch: list[tuple[bytes, str, str]]
) -> int:
    vectors = new.embed([embed_text(heading, text) for _, heading, text in batch])
    embedding_cache.keep(
        conn, dict(zip((h for h, _, _ in batch), vectors, strict=True)), new.model_name
    )
    return len(batch)


def missing(conn: psycopg.Connection[Any], model: str, limit: int) -> list[tuple[bytes, str, str]]:
    """Distinct chunk texts (hash, heading, text) without a vector of `model`."""
    rows = conn.execute(
        """SELECT DISTINCT ON (c.chunk_hash) c.chunk_hash, c.heading, c.text FROM chunks c
           WHERE NOT EXISTS (SELECT 1 FROM embedding_cache e
                             WHERE e.model = %s AND e.chunk_hash = c.chunk_hash)
           LIMIT %s""",
        (model, limit),
    ).fetchall()
    return [(bytes(h), str(heading), str(text)) for h, heading, text in rows]


def count_missing(conn: psycopg.Connection[Any], model: str) -> int:
    row = conn.execute(
        """SELECT count(DISTINCT c.chunk_hash) FROM chunks c
           WHERE NOT EXISTS (SELECT 1 FROM embedding_cache e
                             WHERE e.model = %s AND e.chunk_hash = c.chunk_hash)""",
        (model,),
    ).fetchone()
    return int(row[0]) if row else 0


def switch(conn: psycopg.Connection[Any], new: Embedder, batch_size: int) -> int | None:
    """The atomic switch, and how many texts it embedded; None if writers added more than a
    batch of texts since the catch-up (catch up again). Up to a batch is embedded here,
    while writers wait: under a steady stream of writes the catch-up would otherwise never
    end."""
    model, dimensions = new.model_name, new.dimensions
    with conn.transaction():
        conn.execute("SELECT 1 FROM active_model FOR UPDATE")
        conn.execute("LOCK TABLE chunks IN SHARE ROW EXCLUSIVE MODE")  # writers wait
        late = missing(conn, model, batch_size + 1)
        if len(late) > batch_size:
            return None
        embedded = _embed_into_cache(conn, new, late) if late else 0
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw")
        conn.execute("ALTER TABLE chunks ALTER COLUMN embedding TYPE vector")
        conn.execute(
            """UPDATE chunks c SET embedding = e.embedding FROM embedding_cache e
               WHERE e.model = %s AND e.chunk_hash = c.chunk_hash""",
            (model,),
        )
        _type_vector_column(conn, dimensions)
        conn.execute(
            "UPDATE active_model SET model = %s, dimensions = %s, activated_at = now()",
            (model, dimensions),
        )
        conn.execute("SELECT pg_notify(%s, %s)", (MODEL_CHANNEL, model))
    return embedded


def active_model(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("SELECT model FROM active_model").fetchone()
    return str(row[0]) if row else None


def _type_vector_column(conn: psycopg.Connection[Any], dimensions: int) -> None:
    """chunks.embedding as vector(dimensions), with its HNSW (cosine) index."""
    conn.execute(
        sql.SQL(
            "ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({dims}) "
            "USING embedding::vector({dims})"
        ).format(dims=sql.Literal(dimensions))
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON chunks "
        "USING hnsw (embedding vector_cosine_ops)"
    )
