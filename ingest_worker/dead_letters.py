"""Dead letters: list, show, retry and purge (the `freshindex dead-letters` commands and
GET /v1/dead-letters share the reads)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest_worker.events import DocumentEvent, Op
from ingest_worker.pipeline import BatchReport, Pipeline
from ingest_worker.sources.kafka import events as kafka_events

_COLUMNS = (
    "id, source, tenant, doc_id, version, partition, position, reason, error_class, created_at"
)


def listing(
    conn: psycopg.Connection[Any], limit: int = 50, offset: int = 0, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Newest first; only `tenant`'s if given."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"""SELECT {_COLUMNS} FROM dead_letters WHERE %(tenant)s::text IS NULL
                OR tenant = %(tenant)s ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s""",  # noqa: S608
            {"tenant": tenant, "limit": limit, "offset": offset},
        ).fetchall()


def get(conn: psycopg.Connection[Any], dead_letter_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS}, event, payload FROM dead_letters WHERE id = %s",  # noqa: S608
            (dead_letter_id,),
        ).fetchone()


def purge(conn: psycopg.Connection[Any], ids: list[int] | None) -> int:
    """Delete the given dead letters, or all of them with `ids=None`."""
    if ids is None:
        return conn.execute("DELETE FROM dead_letters").rowcount
    return conn.execute("DELETE FROM dead_letters WHERE id = ANY(%s)", (ids,)).rowcount


def retry(pipeline: Pipeline, ids: list[int] | None) -> BatchReport:
    """Run dead letters through the pipeline again. A file is read again from its folder (it
    may have been fixed); anything else is retried from the stored payload. A letter that
    fails again is stored again, with the new reason."""
    conn = pipeline.store.conn
    rows = (
        [get(conn, i) for i in ids]
        if ids is not None
        else [get(conn, r["id"]) for r in listing(conn, limit=10_000)]
    )
    events = [rebuild(row) for row in rows if row is not None and row["event"] is not None]
    purge(conn, [row["id"] for row in rows if row is not None and row["event"] is not None])
    return pipeline.process(events) if events else BatchReport()


def rebuild(row: dict[str, Any]) -> DocumentEvent:
    fields = row["event"]
    content: bytes | None = bytes(row["payload"]) if row["payload"] is not None else None
    if fields.get("undecoded") and fields["source"].startswith("kafka:"):
        return kafka_events.decode(
            topic=fields["source"].removeprefix("kafka:"),
            partition=row["partition"] or 0,
            offset=row["position"] or 0,
            key=fields["doc_id"].encode() or None,
            value=content,
        )
    if fields["source"].startswith("folder:") and fields.get("filename"):
        path = Path(fields["filename"])
        if path.is_file():
            content = path.read_bytes()
    event_time = fields.get("event_time")
    return DocumentEvent(
        doc_id=fields["doc_id"],
        op=Op(fields["op"]),
        source=fields["source"],
        version=fields.get("version"),
        content=content,
        content_type=fields.get("content_type"),
        filename=fields.get("filename"),
        title=fields.get("title"),
        metadata=fields.get("metadata") or {},
        tenant=fields.get("tenant") or "default",
        fingerprint=fields.get("fingerprint"),
        event_time=datetime.fromisoformat(event_time) if event_time else None,
    )
