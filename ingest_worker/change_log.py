"""What each commit leaves for others to follow, written inside the commit's transaction: the
source positions it completes, and the change feed (the `changes` table, read by
`GET /v1/changes`). Listeners are told by NOTIFY, which Postgres delivers at commit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from ingest_worker.events import DocumentEvent, SourcePosition

CHANGES_CHANNEL = "freshindex_changes"
POSITIONS_CHANNEL = "freshindex_positions"


def applied_positions(conn: psycopg.Connection[Any], source: str) -> dict[int, int]:
    """partition → the last position applied (everything up to it is durable)."""
    rows = conn.execute(
        "SELECT partition, position FROM source_positions WHERE source = %s", (source,)
    ).fetchall()
    return {int(p): int(o) for p, o in rows}


def record_positions(
    cur: psycopg.Cursor[Any], positions: Sequence[SourcePosition], event_time: datetime | None
) -> None:
    """Positions only move forward: a replayed batch cannot move them back. Listeners
    waiting for a position are told at commit."""
    for position in positions:
        payload = {
            "source": position.source,
            "partition": position.partition,
            "position": position.position,
        }
        cur.execute("SELECT pg_notify(%s, %s)", (POSITIONS_CHANNEL, json.dumps(payload)))
        cur.execute(
            """INSERT INTO source_positions (source, partition, position, event_time)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (source, partition) DO UPDATE SET
                   position = greatest(source_positions.position, excluded.position),
                   event_time = coalesce(excluded.event_time, source_positions.event_time),
                   updated_at = now()""",
            (position.source, position.partition, position.position, event_time),
        )


def record_change(cur: psycopg.Cursor[Any], event: DocumentEvent, version: int) -> None:
    """Append to the change feed and tell listeners (NOTIFY is delivered at commit)."""
    row = cur.execute(
        """INSERT INTO changes (tenant, doc_id, version, op) VALUES (%s, %s, %s, %s)
           RETURNING id, indexed_at""",
        (event.tenant, event.doc_id, version, event.op.value),
    ).fetchone()
    assert row is not None
    payload = {
        "id": row[0],
        "tenant": event.tenant,
        "doc_id": event.doc_id,
        "version": version,
        "op": event.op.value,
        "indexed_at": row[1].isoformat(),
    }
    cur.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, json.dumps(payload)))
