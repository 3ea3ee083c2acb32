"""Random streams of document events with a known final state, for crash and rebalance tests."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from kafka import KafkaProducer

from ingest_worker.change_log import applied_positions
from ingest_worker.positions import caught_up
from ingest_worker.sources.kafka import events as kafka_events

WORDS = (
    "river stone cloud maple harbor lantern copper meadow falcon ember quartz willow glacier "
    "orchid canyon thistle beacon saffron tundra juniper"
).split()


@dataclass(frozen=True)
class Event:
    doc_id: str
    version: int
    text: str | None  # None: delete


def script(documents: int, events: int, seed: int) -> list[Event]:
    """`events` events over `documents` documents, versions increasing per document, ~15%
    deletes, interleaved at random (each document's events stay in order)."""
    rng = random.Random(seed)
    versions = dict.fromkeys(range(documents), 0)
    out = []
    for i in range(events):
        d = i if i < documents else rng.randrange(documents)  # every document at least once
        versions[d] += 1
        deleting = versions[d] > 1 and rng.random() < 0.15
        words = " ".join(rng.choice(WORDS) for _ in range(12))
        text = None if deleting else f"Document {d} version {versions[d]}: {words}."
        out.append(Event(f"doc-{d:04d}", versions[d], text))
    return out


def final_state(events: list[Event]) -> dict[str, tuple[int, str | None]]:
    state: dict[str, tuple[int, str | None]] = {}
    for e in events:
        state[e.doc_id] = (e.version, e.text)
    return state


def publish(bootstrap: str, topic: str, events: list[Event]) -> dict[int, int]:
    """Publish the events at once, keyed by doc_id; partition → end offset, from the acks."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        sent = [producer.send(topic, key=key, value=value) for key, value in _encoded(events)]
        acked = [future.get(timeout=60) for future in sent]
    finally:
        producer.close()
    ends: dict[int, int] = {}
    for record in acked:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


def _encoded(events: list[Event]) -> Iterator[tuple[bytes, bytes]]:
    for e in events:
        yield kafka_events.encode(
            e.doc_id,
            text=e.text,
            content_type="text/plain",
            version=e.version,
            delete=e.text is None,
        )


def publish_in_background(
    bootstrap: str, topic: str, events: list[Event], seconds: float
) -> threading.Thread:
    """Publish the events evenly over `seconds` (a steady stream), keyed by doc_id."""

    def run() -> None:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        pause = seconds / max(1, len(events))
        for key, value in _encoded(events):
            producer.send(topic, key=key, value=value)
            time.sleep(pause)
        producer.flush()
        producer.close()

    thread = threading.Thread(target=run, name="publisher", daemon=True)
    thread.start()
    return thread


def indexed_state(db_url: str) -> dict[str, tuple[int, str | None]]:
    """doc_id → (version, text or None if deleted), read from the index."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT d.doc_id, d.version, d.deleted, string_agg(c.text, '|' ORDER BY c.ordinal)
               FROM documents d LEFT JOIN chunks c USING (tenant, doc_id)
               GROUP BY d.doc_id, d.version, d.deleted"""
        ).fetchall()
    return {r[0]: (r[1], None if r[2] else r[3]) for r in rows}


def applied_everything(db_url: str, topic: str, end_offsets: dict[int, int]) -> bool:
    with psycopg.connect(db_url) as conn:
        applied = applied_positions(conn, kafka_events.source_name(topic))
    return caught_up(applied, end_offsets)
