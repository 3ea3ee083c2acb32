"""Dead letters as a source: rebuild their events and run them through the pipeline again
(`freshindex dead-letters retry`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest_worker import dead_letters
from ingest_worker.events import DocumentEvent
from ingest_worker.pipeline import BatchReport, Pipeline
from ingest_worker.sources.kafka import events as kafka_events


def retry(pipeline: Pipeline, ids: list[int] | None) -> BatchReport:
    """Run dead letters through the pipeline again. A file is read again from its folder (it
    may have been fixed); anything else is retried from the stored payload. A letter that
    fails again is stored again, with the new reason."""
    conn = pipeline.store.conn
    rows = (
        [dead_letters.get(conn, i) for i in ids]
        if ids is not None
        else [dead_letters.get(conn, r["id"]) for r in dead_letters.listing(conn, limit=10_000)]
    )
    events = [rebuild(row) for row in rows if row is not None and row["event"] is not None]
    dead_letters.purge(
        conn, [row["id"] for row in rows if row is not None and row["event"] is not None]
    )
    return pipeline.process(events) if events else BatchReport()


def rebuild(row: dict[str, Any]) -> DocumentEvent:
    fields = row["event"]
    content: bytes | None = bytes(row["payload"]) if row["payload"] is not None else None
    topic = kafka_events.topic_of(fields["source"])
    if fields.get("undecoded") and topic is not None:
        return kafka_events.decode(
            topic=topic,
            partition=row["partition"] or 0,
            offset=row["position"] or 0,
            key=fields["doc_id"].encode() or None,
            value=content,
        )
    if fields["source"].startswith("folder:") and fields.get("filename"):
        path = Path(fields["filename"])
        if path.is_file():
            content = path.read_bytes()
    return dead_letters.event_from(fields, content)
