"""The dead-letters table: events that could not be indexed, with their reasons.

A dead letter is open until a later version of its document is applied or the document is
deleted (`resolve`, inside the commit transaction); resolved ones are kept for history.

The pipeline writes them (`insert`, inside `Store.record_dead_letter`'s transaction); the
`freshindex dead-letters` commands and GET /v1/dead-letters read them; each row keeps the
event without its content as JSON (`event_fields`, read back by `event_from`) and the content
or raw message as its payload, so that it can be retried (`sources.dead_letters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest_worker.events import DocumentEvent, Op

_COLUMNS = sql.SQL(", ").join(
    map(
        sql.Identifier,
        "id source tenant doc_id version partition position reason error_class created_at "
        "resolved_at resolved_by_version".split(),
    )
)
State = Literal["open", "resolved", "all"]
_STATE = sql.SQL("CASE WHEN resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS state")
_WHERE_STATE = {
    "open": sql.SQL("resolved_at IS NULL"),
    "resolved": sql.SQL("resolved_at IS NOT NULL"),
    "all": sql.SQL("true"),
}


def insert(cur: psycopg.Cursor[Any], event: DocumentEvent, error: Exception) -> None:
    """Store a dead letter in the caller's transaction (once per event position)."""
    position = event.position
    cur.execute(
        """INSERT INTO dead_letters
               (source, tenant, doc_id, version, partition, position, reason, error_class,
                payload, event)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT DO NOTHING""",
        (
            event.source,
            event.tenant,
            event.doc_id,
            event.version,
            position.partition if position else None,
            position.position if position else None,
            str(error),
            type(error).__name__,
            event.content,
            Jsonb(event_fields(event)),
        ),
    )


def resolve(cur: psycopg.Cursor[Any], event: DocumentEvent, version: int) -> int:
    """Resolve the open dead letters of the document `event` just committed as `version`:
    those of older (or unversioned) events that came before it."""
    position = event.position.position if event.position else None
    return cur.execute(
        """UPDATE dead_letters SET resolved_at = now(), resolved_by_version = %(version)s
           WHERE resolved_at IS NULL AND tenant = %(tenant)s AND doc_id = %(doc_id)s
             AND (version IS NULL OR version <= %(version)s)
             AND (position IS NULL OR %(position)s::bigint IS NULL
                  OR position < %(position)s)""",
        {
            "version": version,
            "tenant": event.tenant,
            "doc_id": event.doc_id,
            "position": position,
        },
    ).rowcount


def event_fields(event: DocumentEvent) -> dict[str, Any]:
    """The event without its content, as JSON (dead letters keep it for retries)."""
    return {
        "doc_id": event.doc_id,
        "op": event.op.value,
        "source": event.source,
        "version": event.version,
        "content_type": event.content_type,
        "filename": event.filename,
        "title": event.title,
        "metadata": dict(event.metadata),
        "tenant": event.tenant,
        "fingerprint": event.fingerprint,
        "event_time": event.event_time.isoformat() if event.event_time else None,
        "undecoded": event.poison is not None,  # the payload is the raw message
    }


def event_from(fields: Mapping[str, Any], content: bytes | None) -> DocumentEvent:
    """The event `event_fields` stored, with its content."""
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


def listing(
    conn: psycopg.Connection[Any],
    limit: int = 50,
    offset: int = 0,
    tenant: str | None = None,
    state: State = "open",
) -> list[dict[str, Any]]:
    """Newest first, with their `state`; only `tenant`'s if given; open ones by default."""
    query = sql.SQL(
        """SELECT {columns}, {state} FROM dead_letters
           WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s) AND {where}
           ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s"""
    ).format(columns=_COLUMNS, state=_STATE, where=_WHERE_STATE[state])
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"tenant": tenant, "limit": limit, "offset": offset}).fetchall()


def get(conn: psycopg.Connection[Any], dead_letter_id: int) -> dict[str, Any] | None:
    query = sql.SQL(
        "SELECT {columns}, {state}, event, payload FROM dead_letters WHERE id = %s"
    ).format(columns=_COLUMNS, state=_STATE)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (dead_letter_id,)).fetchone()


def purge(conn: psycopg.Connection[Any], ids: list[int] | None) -> int:
    """Delete the given dead letters, or all of them with `ids=None`."""
    if ids is None:
        return conn.execute("DELETE FROM dead_letters").rowcount
    return conn.execute("DELETE FROM dead_letters WHERE id = ANY(%s)", (ids,)).rowcount
