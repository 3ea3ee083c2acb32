"""One consistent view of the index per search. A search reads in several statements (a
ranking, then its hits; a hybrid search's two halves on two connections), and a version
committed between them must not show in one part and not in another: every part reads in
one repeatable-read snapshot, shared between connections with `pg_export_snapshot`.

A table rewrite (`freshindex reindex` changes the embedding column's type) is not MVCC-safe:
a snapshot taken before it sees the rewritten table empty. So the tables are locked before
the snapshot is taken (the recipe of Postgres' LOCK documentation); the rewrite then waits
for the search, or the search for the rewrite."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

SEARCHED_TABLES = ("chunks", "documents", "chunk_terms", "bm25_totals")


@contextlib.contextmanager
def read_only(conn: psycopg.Connection[Any], snapshot: str | None = None) -> Iterator[None]:
    """A read-only transaction on one snapshot of the searched tables: a new one, or
    `snapshot` (exported by a transaction that is still open, and so still locking them;
    raises psycopg.Error when it cannot be shared at once: then read on the exporter)."""
    tables = sql.SQL(", ").join(map(sql.Identifier, SEARCHED_TABLES))
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if snapshot is None:
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(tables))
        else:
            # NOWAIT: a rewrite queued behind the exporter's locks would queue this request
            # too, while the exporter waits for us: a cycle through the client that Postgres
            # cannot see. Raises LockNotAvailable instead.
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT").format(tables))
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        yield


def export(conn: psycopg.Connection[Any]) -> str:
    """The snapshot of `conn`'s open transaction, for `read_only` on another connection."""
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])
